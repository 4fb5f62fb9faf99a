//! The plugin host: runs WebAssembly component plugins (destinations, rotators, audit sinks) in a
//! sandbox, one fresh store per call, under per-plugin limits and grants.

mod abi;
mod builtin;
mod cache;
mod call_end;
mod config;
mod dir_guard;
mod dispatch;
mod engine;
mod error;
mod event;
mod fingerprint;
mod flush;
mod host;
mod http;
mod inspect;
mod limits;
mod loader;
mod log;
mod secrets;
mod source;
mod state;
mod stdio;
mod text;
mod tls;

pub use abi::{PACKAGE, VERSIONS, World};
pub use builtin::{BUILTINS, Builtin};
pub use cache::{CacheOutcome, sha256_hex};
pub use config::{
    ConfigValue, PluginConfig, PluginConfigError, ReferenceError, ReferenceResolver,
    SecretReference,
};
pub use engine::EngineOptions;
pub use error::{Failure, FailureKind, PluginError};
pub use event::{
    AuditRecord, ChangeKind, Found, ItemEvent, ItemRef, KEY_CONFIG, NewValue, RENAMED_TO_CONFIG,
    RESERVED_CONFIG_PREFIX, Receipt, Rotation, RotationStep, VaultRef,
};
pub use fingerprint::{FingerprintKey, KeyFileError};
pub use flush::flush_dirs;
pub use host::{HostOptions, Plugin, PluginHost, PluginSource, PluginSpec, WarmInstance};
pub use http::{HostRule, HostRuleError, HttpPolicy, OnDenied};
pub use inspect::{Report, inspect};
pub use limits::{Limits, LimitsError};
pub use loader::{LoadError, Loader};
pub use secrets::REDACTED;
pub use source::{MAX_COMPONENT_BYTES, read_pinned};
pub use state::{DirGrant, Grants};
pub use text::escape_control;
pub use tls::{TlsCaError, TlsTrust};
