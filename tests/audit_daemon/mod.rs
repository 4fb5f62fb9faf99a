//! The real binary as the audit suites run it: `opsync run` as a child SIGKILLed on drop,
//! one-shot commands (`audit status`, `once`), waits that show the daemon's log on timeout, and
//! the request id in a line of rsyslog's parsed output.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: `$E2E_OPSYNC_BINARY` when set (a copy, where several checkouts share one
/// target directory and rebuild `opsync` in turn), else the one cargo built for this test.
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("E2E_OPSYNC_BINARY")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_opsync").into())
}

/// The daemon process, SIGKILLed and reaped on drop (a failing test leaves nothing running).
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start(config: &Path, log: &Path) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(binary())
        .arg("--config")
        .arg(config)
        .arg("run")
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Daemon)
        .expect("start opsync run")
}

pub fn opsync(config: &Path, args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .output()
        .expect("run opsync");
    assert!(
        out.status.success(),
        "opsync {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every request id in Connect's activity log.
/// The request id in one line of rsyslog's parsed.log (the SD parameter, lower-cased).
pub fn syslog_id(line: &str) -> Option<String> {
    let sd = line.split('\t').nth(6)?;
    let v: serde_json::Value = serde_json::from_str(sd).ok()?;
    v["opconnect@32473"]["requestid"]
        .as_str()
        .map(str::to_owned)
}

pub async fn wait_for(what: &str, limit: Duration, log: &Path, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > limit {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            panic!(
                "timed out: {what}; the daemon's last log lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn kill(daemon: &mut Daemon) {
    daemon.0.kill().expect("SIGKILL");
    daemon.0.wait().expect("reaped");
}

/// `opsync once`: its exit code and everything it printed.
pub fn once(config: &Path) -> (i32, String) {
    let out = Command::new(binary())
        .arg("--config")
        .arg(config)
        .arg("once")
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .output()
        .expect("run opsync once");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
