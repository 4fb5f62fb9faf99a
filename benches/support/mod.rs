//! What the benches share: their numeric settings from the environment, running the opsync
//! binary built for the bench, and running a baseline script from the repository's Python venv.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The number in the environment variable `name`, else `default` (unset or not a number).
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `opsync --config CONFIG ARGS`, which must succeed: how long it took and its stdout.
pub fn opsync(config: &Path, args: &[&str]) -> (Duration, String) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_opsync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("run opsync");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "opsync {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, stdout)
}

/// Runs `benches/SCRIPT ARGS` with the venv's Python and the Connect server in its environment;
/// it prints one JSON line with `items`. The items and the seconds of the whole process (as
/// opsync is timed).
pub fn baseline(script: &str, args: &[String], connect: (&str, &str)) -> (u64, f64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "no Python venv at {}: run scripts/sdk-tests.sh and scripts/setup-peers.sh",
        python.display()
    );
    let started = Instant::now();
    let out = Command::new(python)
        .arg(root.join("benches").join(script))
        .args(args)
        .env("OP_CONNECT_HOST", connect.0)
        .env("OP_CONNECT_TOKEN", connect.1)
        .output()
        .expect("run the baseline");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the baseline prints JSON");
    (report["items"].as_u64().expect("items"), seconds)
}

/// Requests by method, `GET 10000, PATCH 10000`.
pub fn by_method<'a>(methods: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for method in methods {
        *counts.entry(method).or_default() += 1;
    }
    counts
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
