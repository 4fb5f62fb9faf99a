//! The compiled-component cache: native code for each component, on disk, keyed by the
//! component's sha256 and the engine's compatibility hash, with a checksum trailer. An entry that
//! is missing, stale, truncated or corrupt is recompiled and replaced, never trusted.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::plugin::error::PluginError;

/// Bytes of the checksum trailer (a sha256 of everything before it).
const TRAILER: usize = 32;

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` output into a sha256, so the engine's compatibility hash gives a key that is the
/// same in every process (std's `DefaultHasher` promises no such thing).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// How a component was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid cache entry.
    Hit,
    /// No entry (or no cache dir): compiled, and stored when there is a cache dir.
    Compiled,
    /// An entry was there but unusable (the reason says why): recompiled and replaced.
    Replaced(String),
}

/// The on-disk cache, or none (compile every time).
#[derive(Clone, Debug)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ComponentCache {
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize()[..12]);
        Self { dir, engine_key }
    }

    /// Where the entry for a component with this sha256 lives.
    pub fn entry_path(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// The compiled component for `wasm` (whose sha256 is `sha256`).
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<(Component, CacheOutcome), String> {
        let Some(path) = self.entry_path(sha256) else {
            return compile(engine, wasm).map(|c| (c, CacheOutcome::Compiled));
        };
        let problem = match fs::read(&path) {
            Ok(bytes) => match deserialize_checked(engine, &bytes) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(reason) => Some(reason),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => Some(format!("unreadable: {e}")),
        };
        if let Some(reason) = &problem {
            tracing::warn!(path = %path.display(), reason, "plugin cache entry not usable; recompiling");
        }
        let component = compile(engine, wasm)?;
        if let Err(e) = store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write plugin cache entry");
        }
        Ok((
            component,
            problem.map_or(CacheOutcome::Compiled, CacheOutcome::Replaced),
        ))
    }
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component, String> {
    Component::new(engine, wasm).map_err(|e| format!("{e:#}"))
}

fn deserialize_checked(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
    if bytes.len() <= TRAILER {
        return Err("truncated".into());
    }
    let (code, sum) = bytes.split_at(bytes.len() - TRAILER);
    if Sha256::digest(code)[..] != *sum {
        return Err("checksum mismatch".into());
    }
    // SAFETY: `deserialize` runs the native code it is given. These bytes are an entry this host
    // wrote itself (`store` below) into its private cache directory, and they match the checksum
    // written with them, so they are exactly what `Component::serialize` produced. wasmtime also
    // checks the header, its version and the engine's settings, refusing a stale entry.
    unsafe { Component::deserialize(engine, code) }.map_err(|e| format!("stale: {e:#}"))
}

/// Writes an entry atomically (temp file + rename) with its checksum trailer.
fn store(path: &Path, component: &Component) -> Result<(), PluginError> {
    let io = |source| PluginError::Cache {
        path: path.to_path_buf(),
        source,
    };
    let code = component
        .serialize()
        .map_err(|e| io(std::io::Error::other(format!("{e:#}"))))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(io)?;
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(&code)?;
        file.write_all(&Sha256::digest(&code))?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(io)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
