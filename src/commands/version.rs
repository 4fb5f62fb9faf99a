//! `opsync version`: the version, the commit and date it was built from, the platform, and the
//! plugin ABI versions this binary can load.

use std::process::ExitCode;

use opsync::plugin::{PACKAGE, VERSIONS, World};

pub fn run() -> ExitCode {
    print!("{}", text());
    ExitCode::SUCCESS
}

/// What `opsync version` prints, one `key: value` per line after the first.
fn text() -> String {
    let worlds = [World::Destination, World::Rotator, World::AuditSink]
        .map(World::as_str)
        .join(", ");
    let abis = VERSIONS
        .iter()
        .map(|v| format!("{PACKAGE}@{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "opsync {}\ncommit: {}\nbuilt: {}\ntarget: {}\nplugin abi: {abis} (worlds: {worlds})\n",
        env!("CARGO_PKG_VERSION"),
        or_unknown(env!("BUILD_GIT_COMMIT")),
        or_unknown(env!("BUILD_DATE")),
        target(),
    )
}

/// A build stamp, or `unknown` when the build could not tell (no git, no `date`).
fn or_unknown(stamp: &'static str) -> &'static str {
    if stamp.is_empty() { "unknown" } else { stamp }
}

/// The platform this binary was built for, as `arch-os[-env]`.
fn target() -> String {
    let env = if cfg!(target_env = "gnu") {
        "-gnu"
    } else if cfg!(target_env = "musl") {
        "-musl"
    } else {
        ""
    };
    format!("{}-{}{env}", std::env::consts::ARCH, std::env::consts::OS)
}
