//! File operations inside a granted directory through `wasi:filesystem` descriptors: each
//! directory is opened once per call (a batch of files in one directory shares it) and every
//! operation is relative to it.
//!
//! Going through the descriptors rather than `std::fs` saves, per written file, the host's
//! resolving of the directory path twice more for the rename, and the hand-off of the write to
//! another host thread (a stream write is asynchronous in the host; `descriptor.write` is not).

use opsync_destination_kit::{PluginError, retryable};
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;
use wasip2::filesystem::preopens::get_directories;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

/// How much one `read` asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// The directories opened during one call, by guest path, and the granted ones.
#[derive(Default)]
pub struct Dirs {
    granted: OnceCell<Vec<Grant>>,
    opened: RefCell<HashMap<String, Rc<Descriptor>>>,
}

/// A granted directory and its guest path.
struct Grant {
    dir: Rc<Descriptor>,
    guest: String,
}

/// The directory holding one file, and the file's name in it.
pub struct Parent {
    /// The file's directory: the granted one, or one opened beneath it.
    dir: Rc<Descriptor>,
    name: String,
    /// The file's guest path, for messages.
    path: String,
}

/// What a failed operation is called in messages: `cannot {action} {path}: {why}`.
fn error(action: &str, path: &str, code: ErrorCode) -> PluginError {
    let msg = format!("cannot {action} {path}: {}", describe(code));
    match code {
        ErrorCode::Access
        | ErrorCode::NotPermitted
        | ErrorCode::NoEntry
        | ErrorCode::ReadOnly
        | ErrorCode::NotDirectory => PluginError::Misconfigured(msg),
        _ => retryable(msg),
    }
}

/// `Permission denied (EACCES)` from the binding's "Permission denied, similar to `EACCES` in
/// POSIX."; the text as it is when it has another shape.
fn describe(code: ErrorCode) -> String {
    let text = code.message().trim_end_matches('.');
    text.split_once(", similar to `")
        .and_then(|(what, rest)| {
            rest.split_once('`')
                .map(|(posix, _)| format!("{what} ({posix})"))
        })
        .unwrap_or_else(|| text.to_owned())
}

impl Dirs {
    /// The granted directory that holds the absolute guest `path` (the longest matching guest
    /// path), and `path` relative to it.
    fn granted(&self, path: &str) -> Result<(Rc<Descriptor>, String), PluginError> {
        let granted = self.granted.get_or_init(|| {
            get_directories()
                .into_iter()
                .map(|(dir, guest)| Grant {
                    dir: Rc::new(dir),
                    guest,
                })
                .collect()
        });
        let mut best: Option<(&Rc<Descriptor>, String, usize)> = None;
        for Grant { dir, guest } in granted {
            let prefix = guest.trim_end_matches('/');
            let rest = match path.strip_prefix(prefix) {
                Some(rest) if rest.starts_with('/') => rest,
                _ => continue,
            };
            if best.as_ref().is_none_or(|(_, _, len)| prefix.len() > *len) {
                best = Some((dir, rest.trim_start_matches('/').to_owned(), prefix.len()));
            }
        }
        best.map(|(dir, rest, _)| (Rc::clone(dir), rest))
            .ok_or_else(|| {
                PluginError::Misconfigured(format!(
                    "cannot reach {path}: no directory is granted there (plugin grants.dirs)"
                ))
            })
    }

    /// Opens the directory of `path`, made (with its parents) when missing.
    pub fn parent(&self, path: &str) -> Result<Parent, PluginError> {
        self.locate(path, true)?
            .ok_or_else(|| retryable(format!("cannot create the directory of {path}")))
    }

    /// Opens the directory of `path`; `None` when it does not exist.
    pub fn existing(&self, path: &str) -> Result<Option<Parent>, PluginError> {
        self.locate(path, false)
    }

    fn locate(&self, path: &str, create: bool) -> Result<Option<Parent>, PluginError> {
        let (root, relative) = self.granted(path)?;
        let (dir_path, name) = match relative.rsplit_once('/') {
            Some((dir, name)) => (dir.to_owned(), name.to_owned()),
            None => (String::new(), relative),
        };
        if name.is_empty() {
            return Err(PluginError::Misconfigured(format!(
                "{path} names a directory, not a file"
            )));
        }
        if dir_path.is_empty() {
            return Ok(Some(Parent {
                dir: root,
                name,
                path: path.to_owned(),
            }));
        }
        // The directory's guest path: `path` without `/name`.
        let cache_key = path[..path.len() - name.len()]
            .trim_end_matches('/')
            .to_owned();
        if let Some(dir) = self.opened.borrow().get(&cache_key) {
            return Ok(Some(Parent {
                dir: Rc::clone(dir),
                name,
                path: path.to_owned(),
            }));
        }
        let open = |root: &Descriptor| {
            root.open_at(
                PathFlags::SYMLINK_FOLLOW,
                &dir_path,
                OpenFlags::DIRECTORY,
                DescriptorFlags::READ | DescriptorFlags::MUTATE_DIRECTORY,
            )
        };
        let dir = match open(&root) {
            Ok(dir) => dir,
            Err(ErrorCode::NoEntry) if !create => return Ok(None),
            Err(ErrorCode::NoEntry) => {
                let mut made = String::new();
                for part in dir_path.split('/').filter(|p| !p.is_empty()) {
                    if !made.is_empty() {
                        made.push('/');
                    }
                    made.push_str(part);
                    match root.create_directory_at(&made) {
                        Ok(()) | Err(ErrorCode::Exist) => {}
                        Err(e) => return Err(error("create the directory of", path, e)),
                    }
                }
                open(&root).map_err(|e| error("open the directory of", path, e))?
            }
            Err(e) => return Err(error("open the directory of", path, e)),
        };
        let dir = Rc::new(dir);
        self.opened.borrow_mut().insert(cache_key, Rc::clone(&dir));
        Ok(Some(Parent {
            dir,
            name,
            path: path.to_owned(),
        }))
    }
}

impl Parent {
    /// The file's content, or `None` when there is no such file.
    pub fn read(&self) -> Result<Option<Vec<u8>>, PluginError> {
        let file = match self.dir.open_at(
            PathFlags::SYMLINK_FOLLOW,
            &self.name,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        ) {
            Ok(file) => file,
            Err(ErrorCode::NoEntry) => return Ok(None),
            Err(e) => return Err(error("read", &self.path, e)),
        };
        let mut content = Vec::new();
        loop {
            let (chunk, end) = file
                .read(READ_CHUNK, content.len() as u64)
                .map_err(|e| error("read", &self.path, e))?;
            content.extend_from_slice(&chunk);
            if end || chunk.is_empty() {
                return Ok(Some(content));
            }
        }
    }

    /// Writes `content` to a new temp file beside the target (flushed to disk with `durable`),
    /// then renames it over the target. The temp file is removed on failure.
    pub fn replace(&self, content: &[u8], durable: bool) -> Result<(), PluginError> {
        let dir = &self.dir;
        let nonce = RandomState::new().hash_one(&self.path);
        let temp = format!(".{}.{nonce:016x}.tmp", self.name);
        let temp_path = format!("{}/{temp}", self.path.rsplit_once('/').map_or("", |p| p.0));
        let file = dir
            .open_at(
                PathFlags::empty(),
                &temp,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::WRITE,
            )
            .map_err(|e| error("create", &temp_path, e))?;
        let result = (|| {
            let mut written = 0;
            while written < content.len() {
                let n = file
                    .write(&content[written..], written as u64)
                    .map_err(|e| error("write", &temp_path, e))?;
                if n == 0 {
                    return Err(retryable(format!(
                        "cannot write {temp_path}: nothing was written"
                    )));
                }
                written += n as usize;
            }
            if durable {
                file.sync().map_err(|e| error("sync", &temp_path, e))?;
            }
            drop(file);
            dir.rename_at(&temp, dir, &self.name)
                .map_err(|e| error("rename into", &self.path, e))
        })();
        if result.is_err() {
            let _ = dir.unlink_file_at(&temp);
        }
        result
    }

    /// Removes the file; returns whether it existed.
    pub fn remove(&self) -> Result<bool, PluginError> {
        match self.dir.unlink_file_at(&self.name) {
            Ok(()) => Ok(true),
            Err(ErrorCode::NoEntry) => Ok(false),
            Err(e) => Err(error("remove", &self.path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_read_like_the_os_errors_they_stand_for() {
        assert_eq!(describe(ErrorCode::Access), "Permission denied (EACCES)");
        assert_eq!(
            describe(ErrorCode::NoEntry),
            "No such file or directory (ENOENT)"
        );
        match error("create", "/out/a.env", ErrorCode::ReadOnly) {
            PluginError::Misconfigured(msg) => {
                assert_eq!(
                    msg,
                    "cannot create /out/a.env: Read-only file system (EROFS)"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error("write", "/out/a.env", ErrorCode::InsufficientSpace),
            PluginError::Retryable(_)
        ));
    }
}
