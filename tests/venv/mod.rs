//! The repository's Python venv (`$OPSYNC_VENV`, else `<repo>/.venv`; scripts/setup-peers.sh
//! installs it): its python, checked to import what a test drives a fake with.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv's python, which must import `modules` (`"github, nacl"`); otherwise a panic naming
/// `what` is missing and the script that installs it (a missing peer fails, never skips).
pub fn python_with(modules: &str, what: &str) -> PathBuf {
    let venv = std::env::var_os("OPSYNC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let python = venv.join("bin/python");
    let imports = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        imports,
        "{} cannot import {what}: run `bash scripts/setup-peers.sh`",
        python.display()
    );
    python
}
