//! The data of one plugin store (one call): WASI and wasi:http contexts, the resource table, the
//! limiter, the CPU budget and each capability's per-call state.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::plugin::config::PluginConfig;
use crate::plugin::dir_guard::WriteQuota;
use crate::plugin::fingerprint::{FingerprintKey, MAX_DIGESTS_PER_CALL};
use crate::plugin::http::{HttpHooks, HttpPolicy, OnDenied};
use crate::plugin::limits::{BATCH_TIME_FACTOR, Limiter, Limits};
use crate::plugin::log::{Level, LogBudget};
use crate::plugin::secrets::Secrets;
use crate::plugin::stdio::CappedOutput;

/// Bytes of stdout and of stderr kept from one call (then forwarded as log lines).
const STDIO_CAP: usize = 16 << 10;
/// Largest `get-random-bytes` request.
const MAX_RANDOM: u64 = 64 << 10;
/// Memory for the headers of one wasi:http `fields`.
const HTTP_FIELDS_CAP: usize = 16 << 10;

/// A directory the operator granted to a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host; it must exist.
    pub host: PathBuf,
    /// Where the plugin sees it, e.g. `/`.
    pub guest: String,
    pub read_only: bool,
    /// Flush its filesystem to disk before deliveries through the plugin are recorded (writable
    /// directories only).
    pub flush: bool,
}

/// What the operator granted a plugin beyond its world's imports.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// Outgoing HTTP allow-list.
    pub http: HttpPolicy,
    /// Directories (none by default).
    pub dirs: Vec<DirGrant>,
    /// TCP addresses the plugin may connect to with `wasi:sockets` (none by default).
    pub tcp: Vec<SocketAddr>,
}

/// Everything a store needs from its plugin, shared by all of that plugin's calls.
#[derive(Clone)]
pub struct StoreSpec {
    pub plugin: Arc<str>,
    pub limits: Limits,
    pub http: Arc<HttpPolicy>,
    pub dirs: Vec<DirGrant>,
    pub tcp: Arc<[SocketAddr]>,
    pub config: Arc<PluginConfig>,
    pub cpu_ticks: u64,
    pub on_denied: Option<OnDenied>,
    /// The key of `fingerprint.digest` (ABI 0.2.0).
    pub fingerprint: Arc<FingerprintKey>,
}

impl StoreSpec {
    /// The spec of a call that delivers `events` changes (see [`Limits::for_batch`]).
    pub fn for_batch(&self, events: usize) -> StoreSpec {
        let time = events.clamp(1, BATCH_TIME_FACTOR) as u64;
        StoreSpec {
            limits: self.limits.for_batch(events),
            cpu_ticks: self.cpu_ticks.saturating_mul(time),
            ..self.clone()
        }
    }
}

/// A call asked for more than [`MAX_DIGESTS_PER_CALL`] fingerprints; the call is stopped.
#[derive(Debug, thiserror::Error)]
#[error("the plugin asked for more than {MAX_DIGESTS_PER_CALL} fingerprints in one call")]
pub struct DigestLimit;

/// The `T` of `Store<T>` for plugins.
pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http_ctx: WasiHttpCtx,
    pub http: HttpHooks,
    pub limiter: Limiter,
    pub secrets: Secrets,
    pub log: LogBudget,
    pub config: Arc<PluginConfig>,
    /// Reserved config values of this call only (`opsync.key`, ...), answered before `config`.
    pub reserved: Vec<(&'static str, String)>,
    /// Epoch ticks the guest may still run.
    pub cpu_ticks_left: u64,
    /// Set when the CPU budget ran out.
    pub cpu_exhausted: bool,
    /// Bytes the plugin may still write into its granted directories.
    pub dir_quota: Arc<WriteQuota>,
    fingerprint: Arc<FingerprintKey>,
    /// The fingerprints this call's `digest` made: only these may come back in a receipt or a
    /// read-back, so nothing but a keyed digest reaches the state database.
    issued: Vec<String>,
    stdout: CappedOutput,
    stderr: CappedOutput,
}

/// Files a plugin creates in a granted directory must be private to the daemon's user (0600),
/// and WASI has no chmod: the process umask is the one place to decide it. Set to 077 whenever a
/// host with a granted directory is built; it is never loosened, so setting it again is a no-op.
pub fn private_files() {
    // SAFETY: umask only swaps the process's file-mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

impl HostState {
    /// Fresh state for one call: no env, no args, no sockets, only the granted directories.
    pub fn new(spec: &StoreSpec) -> std::io::Result<Self> {
        let stdout = CappedOutput::new(STDIO_CAP);
        let stderr = CappedOutput::new(STDIO_CAP);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .max_random_size(MAX_RANDOM)
            .allow_ip_name_lookup(false)
            .allow_udp(false)
            .allow_tcp(!spec.tcp.is_empty())
            // File operations run inline: calls of plugins with directories run on a blocking
            // thread (`Plugin::call`).
            .allow_blocking_current_thread(!spec.dirs.is_empty());
        if !spec.tcp.is_empty() {
            let granted = spec.tcp.clone();
            wasi.socket_addr_check(move |addr, usage| {
                let ok = match usage {
                    SocketAddrUse::TcpConnect => granted.contains(&addr),
                    // The implicit bind of `connect` (wildcard address, any port); never a listener.
                    SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                    _ => false,
                };
                Box::pin(async move { ok })
            });
        }
        for dir in &spec.dirs {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", dir.host.display())))?;
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(spec.limits.resource_table);
        let mut http_ctx = WasiHttpCtx::new();
        http_ctx.set_field_size_limit(HTTP_FIELDS_CAP);
        Ok(Self {
            wasi: wasi.build(),
            table,
            http_ctx,
            http: HttpHooks::new(
                spec.plugin.clone(),
                spec.http.clone(),
                &spec.limits,
                spec.on_denied.clone(),
            ),
            limiter: Limiter::new(&spec.limits),
            secrets: Secrets::new(spec.plugin.clone(), &spec.limits),
            log: LogBudget::new(spec.plugin.clone(), &spec.limits),
            config: spec.config.clone(),
            reserved: Vec::new(),
            cpu_ticks_left: spec.cpu_ticks,
            cpu_exhausted: false,
            dir_quota: WriteQuota::new(spec.limits.dir_write_bytes_per_call),
            fingerprint: spec.fingerprint.clone(),
            issued: Vec::new(),
            stdout,
            stderr,
        })
    }

    /// `fingerprint.digest`: the keyed fingerprint of `data`, remembered as issued by this call.
    pub fn digest(&mut self, data: &[u8]) -> Result<String, DigestLimit> {
        if self.issued.len() >= MAX_DIGESTS_PER_CALL {
            return Err(DigestLimit);
        }
        let digest = self.fingerprint.digest(data);
        self.issued.push(digest.clone());
        Ok(digest)
    }

    /// Whether this call's `digest` made `fingerprint`.
    pub fn issued_digest(&self, fingerprint: &str) -> bool {
        self.issued.iter().any(|d| d == fingerprint)
    }

    /// Forwards what the plugin printed to stdout/stderr as log lines (budgeted, redacted), and
    /// reports dropped lines and output. Called once at the end of every call.
    pub fn finish(&mut self) {
        for (pipe, level, stream) in [
            (&self.stdout, Level::Info, "stdout"),
            (&self.stderr, Level::Warn, "stderr"),
        ] {
            let (bytes, dropped) = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines() {
                if !line.trim().is_empty() && self.log.log(&self.secrets, level, line).is_err() {
                    break;
                }
            }
            self.log.output_dropped(stream, dropped, STDIO_CAP);
        }
        self.log.finish();
    }

    /// Whether the plugin tried to write past its directory write quota in this call.
    pub fn dir_quota_hit(&self) -> bool {
        self.dir_quota.hit()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}
