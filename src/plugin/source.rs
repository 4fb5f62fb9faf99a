//! Reading a plugin's component: a built-in's embedded bytes, or a file, which must be a regular
//! file of at most [`MAX_COMPONENT_BYTES`] (never read whole before its size is known).

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use crate::plugin::builtin;
use crate::plugin::cache::sha256_hex;
use crate::plugin::error::PluginError;
use crate::plugin::host::PluginSource;

/// The largest component file opsync reads (the built-ins are under 1 MiB each).
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// The component bytes of `source`, for the plugin named `plugin`, with their sha256; a file's
/// must match its pin.
pub fn read(
    plugin: &str,
    source: &PluginSource,
) -> Result<(Cow<'static, [u8]>, String), PluginError> {
    match source {
        PluginSource::Builtin(builtin_name) => {
            let wasm = builtin::builtin(builtin_name)
                .map(|b| b.wasm)
                .ok_or_else(|| PluginError::UnknownBuiltin {
                    plugin: plugin.to_string(),
                    known: builtin::names(),
                })?;
            Ok((Cow::Borrowed(wasm), sha256_hex(wasm)))
        }
        PluginSource::File { path, sha256 } => {
            let (wasm, actual) = read_pinned(plugin, path, sha256)?;
            Ok((Cow::Owned(wasm), actual))
        }
    }
}

/// A component file whose sha256 must be `expected` (any case): a mismatch is refused, naming
/// the plugin and both hashes.
pub fn read_pinned(
    plugin: &str,
    path: &Path,
    expected: &str,
) -> Result<(Vec<u8>, String), PluginError> {
    let wasm = read_file(plugin, path)?;
    let actual = sha256_hex(&wasm);
    if !expected.eq_ignore_ascii_case(&actual) {
        return Err(PluginError::HashMismatch {
            plugin: plugin.to_string(),
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok((wasm, actual))
}

/// A component file: refused unless it is a regular file within the size cap.
pub fn read_file(plugin: &str, path: &Path) -> Result<Vec<u8>, PluginError> {
    let io_err = |source| PluginError::Read {
        plugin: plugin.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(PluginError::NotAFile {
            plugin: plugin.to_string(),
            path: path.to_path_buf(),
        });
    }
    let too_large = |size| PluginError::TooLarge {
        plugin: plugin.to_string(),
        path: path.to_path_buf(),
        size,
        limit: MAX_COMPONENT_BYTES,
    };
    if meta.len() > MAX_COMPONENT_BYTES {
        return Err(too_large(meta.len()));
    }
    // The file may grow between the check and the read: never read past the cap.
    let mut wasm = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_COMPONENT_BYTES + 1)
        .read_to_end(&mut wasm)
        .map_err(io_err)?;
    if wasm.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(too_large(wasm.len() as u64));
    }
    Ok(wasm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_or_a_directory_is_refused() {
        let err = read_file("p", Path::new("/dev/zero")).expect_err("a device");
        assert!(matches!(err, PluginError::NotAFile { .. }), "{err}");
        let err = read_file("p", Path::new("/")).expect_err("a directory");
        assert!(matches!(err, PluginError::NotAFile { .. }), "{err}");
    }

    #[test]
    fn a_file_over_the_cap_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("huge.wasm");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_COMPONENT_BYTES + 1).expect("sparse file");
        let err = read_file("p", &path).expect_err("too large");
        assert!(err.to_string().contains("67108865 bytes"), "{err}");
    }
}
