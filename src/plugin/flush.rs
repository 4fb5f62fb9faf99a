//! Flushing a plugin's writable granted directories to disk, so that what its calls wrote is
//! durable before the ledger records it as delivered.

use std::path::Path;
use std::time::Instant;

use crate::plugin::error::PluginError;
use crate::plugin::state::DirGrant;
use crate::telemetry::names;

/// Flushes the filesystem holding `dir`: every file written or renamed there, data and directory
/// entries, is on disk when this returns (Linux `syncfs`; elsewhere the directory's own `fsync`,
/// which covers its entries only).
fn flush_filesystem(dir: &Path) -> std::io::Result<()> {
    let handle = std::fs::File::open(dir)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        // SAFETY: syncfs only reads the descriptor, which `handle` keeps open for the call.
        if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        handle.sync_all()
    }
}

/// Flushes each of `dirs` that is writable and not opted out (`flush = false`), in order; the
/// first failure names the plugin and the directory. Returns how many were flushed.
pub fn flush_dirs(plugin: &str, dirs: &[DirGrant]) -> Result<usize, PluginError> {
    let mut flushed = 0;
    for dir in dirs.iter().filter(|d| d.flush && !d.read_only) {
        let started = Instant::now();
        let result = flush_filesystem(&dir.host);
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(names::PLUGIN_DIR_FLUSHES_TOTAL, "plugin" => plugin.to_owned(),
            "result" => outcome)
        .increment(1);
        metrics::histogram!(names::PLUGIN_DIR_FLUSH_DURATION_SECONDS, "plugin" => plugin.to_owned())
            .record(started.elapsed().as_secs_f64());
        result.map_err(|source| PluginError::Flush {
            plugin: plugin.to_owned(),
            path: dir.host.clone(),
            source,
        })?;
        flushed += 1;
    }
    Ok(flushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(host: &Path, read_only: bool, flush: bool) -> DirGrant {
        DirGrant {
            host: host.to_path_buf(),
            guest: "/".into(),
            read_only,
            flush,
        }
    }

    #[test]
    fn flushes_writable_dirs_only_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [
            grant(dir.path(), false, true),
            grant(dir.path(), true, true),
            grant(dir.path(), false, false),
        ];
        assert_eq!(flush_dirs("files", &dirs).unwrap(), 1);

        let gone = dir.path().join("gone");
        let err = flush_dirs("files", &[grant(&gone, false, true)]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("plugin `files`"), "{text}");
        assert!(text.contains(&gone.display().to_string()), "{text}");
        assert_eq!(err.kind(), crate::plugin::FailureKind::Retryable);
    }
}
