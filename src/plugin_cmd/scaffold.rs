//! `opsync plugin new`: writes a standalone Rust destination-plugin crate, with a copy of the
//! plugin ABI's WIT, that builds for wasm32-wasip2 and carries a test of its own.

use std::path::{Path, PathBuf};

use crate::plugin::VERSIONS;

/// The ABI version the scaffold targets (its WIT is embedded below).
const ABI_VERSION: &str = "0.2.0";

/// The crate's files, relative to its folder, with `{{name}}`-style placeholders.
const TEMPLATES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("template/lib.rs.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
    (".gitignore", include_str!("template/gitignore.tmpl")),
];

/// The WIT of ABI 0.2.0 and the WASI packages it uses, as in `wit/0.2.0/`.
const WIT: &[(&str, &str)] = &[
    ("wit/opsync.wit", include_str!("../../wit/0.2.0/opsync.wit")),
    (
        "wit/deps/cli/package.wit",
        include_str!("../../wit/0.2.0/deps/cli/package.wit"),
    ),
    (
        "wit/deps/clocks/package.wit",
        include_str!("../../wit/0.2.0/deps/clocks/package.wit"),
    ),
    (
        "wit/deps/filesystem/package.wit",
        include_str!("../../wit/0.2.0/deps/filesystem/package.wit"),
    ),
    (
        "wit/deps/http/package.wit",
        include_str!("../../wit/0.2.0/deps/http/package.wit"),
    ),
    (
        "wit/deps/io/package.wit",
        include_str!("../../wit/0.2.0/deps/io/package.wit"),
    ),
    (
        "wit/deps/random/package.wit",
        include_str!("../../wit/0.2.0/deps/random/package.wit"),
    ),
    (
        "wit/deps/sockets/package.wit",
        include_str!("../../wit/0.2.0/deps/sockets/package.wit"),
    ),
];

/// Why a crate could not be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "`{0}` is not a usable crate name: start with a letter, then letters, digits, '-' or '_'"
    )]
    BadName(String),
    #[error("{} already exists; pick a new folder", .0.display())]
    Exists(PathBuf),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `new` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scaffold {
    /// The crate's folder.
    pub dir: PathBuf,
    /// The package name (the folder's last component).
    pub name: String,
    /// The component cargo builds: `target/wasm32-wasip2/release/<crate_name>.wasm`, relative to
    /// `dir`.
    pub wasm: PathBuf,
    /// Every file written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

/// Writes a new plugin crate into `dir` (which must not exist); its last component names it.
pub fn scaffold(dir: &Path) -> Result<Scaffold, ScaffoldError> {
    debug_assert!(
        VERSIONS.contains(&ABI_VERSION),
        "the scaffold's ABI is spoken"
    );
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    if !valid_name(&name) {
        return Err(ScaffoldError::BadName(dir.display().to_string()));
    }
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let crate_name = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", &name)
            .replace("{{crate_name}}", &crate_name)
            .replace(
                "{{abi}}",
                &format!("{}@{ABI_VERSION}", crate::plugin::PACKAGE),
            )
    };
    let mut files = Vec::new();
    for (rel, text) in TEMPLATES
        .iter()
        .map(|(rel, text)| (*rel, fill(text)))
        .chain(WIT.iter().map(|(rel, text)| (*rel, (*text).to_owned())))
    {
        let path = dir.join(rel);
        write(&path, &text)?;
        files.push(PathBuf::from(rel));
    }
    Ok(Scaffold {
        dir: dir.to_path_buf(),
        wasm: Path::new("target/wasm32-wasip2/release").join(format!("{crate_name}.wasm")),
        name,
        files,
    })
}

fn write(path: &Path, text: &str) -> Result<(), ScaffoldError> {
    let err = |source| ScaffoldError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

/// A crate name cargo accepts and that is not a keyword-looking oddity.
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_named_crate_with_the_abi_wit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = scaffold(&tmp.path().join("my-dest")).expect("scaffold");
        assert_eq!(s.name, "my-dest");
        assert_eq!(
            s.wasm,
            Path::new("target/wasm32-wasip2/release/my_dest.wasm")
        );
        let cargo = std::fs::read_to_string(s.dir.join("Cargo.toml")).expect("Cargo.toml");
        assert!(cargo.contains("name = \"my-dest\""), "{cargo}");
        assert!(cargo.contains("[workspace]"), "{cargo}");
        let readme = std::fs::read_to_string(s.dir.join("README.md")).expect("README");
        assert!(!readme.contains("{{"), "{readme}");
        let wit = std::fs::read_to_string(s.dir.join("wit/opsync.wit")).expect("wit");
        assert!(wit.contains("package opsync:plugin@0.2.0;"));
        assert!(s.dir.join("wit/deps/http/package.wit").is_file());
    }

    #[test]
    fn refuses_bad_names_and_existing_folders() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for bad in ["9lives", "a b", "dots.no", ""] {
            assert!(
                matches!(
                    scaffold(&tmp.path().join(bad)),
                    Err(ScaffoldError::BadName(_) | ScaffoldError::Exists(_))
                ),
                "{bad}"
            );
        }
        std::fs::create_dir(tmp.path().join("taken")).expect("mkdir");
        assert!(matches!(
            scaffold(&tmp.path().join("taken")),
            Err(ScaffoldError::Exists(_))
        ));
    }
}
