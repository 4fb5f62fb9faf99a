//! The state file: loading it, writing it atomically (temp file + rename, mode 0600), and saving soon after writes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::server::App;
use super::store::Store;

/// How long after a write the state is saved; writes within it are saved together.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Why the state file could not be read or written. Messages never quote its content.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The store saved in `path`, or `None` when the file does not exist or is empty (a new state).
pub fn load(path: &Path) -> Result<Option<Store>, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Store::from_json(&bytes)
        .map(Some)
        .map_err(|message| PersistError::Invalid {
            path: path.to_owned(),
            message,
        })
}

/// Writes `bytes` to `path` atomically: a temp file beside it, flushed, then renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let io = |source| PersistError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = result.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Serialises the store now (under a read lock) and writes it off the async threads.
pub async fn save(app: &App, path: &Path) -> Result<(), PersistError> {
    let bytes = app.read().to_json().map_err(|e| PersistError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
        .await
        .map_err(|e| PersistError::Invalid {
            path: PathBuf::new(),
            message: format!("the save task failed: {e}"),
        })?
}

/// Saves shortly after each change until `stop` turns true.
pub async fn autosave(
    app: Arc<App>,
    path: PathBuf,
    changes: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = changes.notified() => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(DEBOUNCE) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = save(&app, &path).await {
            tracing::warn!(error = %e, "could not save the connect-dev state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_restricts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomically(&path, b"one").expect("write");
        write_atomically(&path, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn missing_or_empty_means_new() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        assert!(load(&path).expect("missing is fine").is_none());
        std::fs::write(&path, "\n").expect("write");
        assert!(load(&path).expect("empty is fine").is_none());
        std::fs::write(&path, "{\"format\": 1, \"secret\": \"hunter2\"").expect("write");
        let Err(err) = load(&path) else {
            panic!("garbage was accepted");
        };
        let err = err.to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
