//! The built `opsync` binary: `version`, `check-config` and `connect-dev`, run as a user would.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use opsync::connect::token::Access;
use opsync::connect_dev::{DevServer, DevServerOptions};

const BIN: &str = env!("CARGO_BIN_EXE_opsync");

/// `opsync ARGS` in `dir` with only `env` set (nothing inherited, so no stray OP_* or OPSYNC_*).
async fn opsync(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn dev_server() -> DevServer {
    DevServer::start(DevServerOptions::default())
        .await
        .expect("connect-dev starts on port 0")
}

#[tokio::test]
async fn version_prints_crate_version_and_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A broken config must not matter to `version`.
    std::fs::write(dir.path().join("config.toml"), "[nonsense").expect("writes");
    let out = opsync(dir.path(), &["version"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(concat!("opsync ", env!("CARGO_PKG_VERSION"), "\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "target: {}-{}",
            std::env::consts::ARCH,
            std::env::consts::OS
        )),
        "{stdout}"
    );
}

#[tokio::test]
async fn help_lists_only_real_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = opsync(dir.path(), &["--help"], &[]).await;
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in [
        "connect-dev",
        "check-config",
        "version",
        "  run ",
        "  once ",
        "  plan ",
        "  status ",
        "  deadletter ",
        "  demo ",
        "  rotate ",
        "  audit ",
    ] {
        assert!(help.contains(command), "{help}");
    }
    assert!(help.contains("OPSYNC_CONNECT__TIMEOUT"), "{help}");
}

#[tokio::test]
async fn check_config_redacts_and_lists_grants() {
    let server = dev_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let token = server.token().to_owned();
    let base = server.base_url();
    let env = [
        ("OP_CONNECT_HOST", base.as_str()),
        ("OP_CONNECT_TOKEN", token.as_str()),
    ];

    let out = opsync(dir.path(), &["check-config"], &env).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
    assert!(stdout.contains("token = \"<redacted>\""), "{stdout}");
    assert!(stdout.contains(&format!("host = \"{base}/\"")), "{stdout}");
    assert!(stdout.contains("expires     never"), "{stdout}");
    assert_eq!(stdout.matches("  rw").count(), 3, "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");

    let out = opsync(dir.path(), &["check-config", "--online"], &env).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in ["Production", "Staging", "Shared"] {
        assert!(stdout.contains(&format!("  rw  {name}\n")), "{stdout}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn check_config_warns_on_a_short_lived_token_and_fails_on_an_expired_one() {
    let server = dev_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let base = server.base_url();

    let short = server
        .mint_token(
            &[("Production".to_owned(), Access::Read)],
            Some(Duration::from_secs(3 * 24 * 3600)),
        )
        .expect("mints");
    let token_file = dir.path().join("token.jwt");
    std::fs::write(&token_file, format!("{short}\n")).expect("writes");
    let token_file = token_file.display().to_string();
    let out = opsync(
        dir.path(),
        &["check-config", "--connect-token-file", &token_file],
        &[("OP_CONNECT_HOST", &base)],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "a warning is not a failure: {stderr}");
    assert!(
        stderr.starts_with("warning: the Connect token expires at "),
        "{stderr}"
    );
    assert!(
        stdout.contains("  r\n") || stdout.contains("  r  "),
        "{stdout}"
    );
    assert_eq!(stdout.matches("  rw").count(), 0, "{stdout}");
    assert!(!stdout.contains(&short) && !stderr.contains(&short));

    let expiring = server
        .mint_token(
            &[("Production".to_owned(), Access::Read)],
            Some(Duration::from_secs(1)),
        )
        .expect("mints");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let out = opsync(
        dir.path(),
        &["check-config"],
        &[("OP_CONNECT_HOST", &base), ("OP_CONNECT_TOKEN", &expiring)],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the Connect token expired at "),
        "{stderr}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn config_errors_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The default ./config.toml is read when present.
    std::fs::write(
        dir.path().join("config.toml"),
        "[connect]\nhost = \"http://127.0.0.1:9\"\ntimeout = \"2 parsecs\"\n",
    )
    .expect("writes");
    let out = opsync(dir.path(), &["check-config"], &[("OP_CONNECT_TOKEN", "t")]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: config.toml: connect.timeout: invalid duration \"2 parsecs\""),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // An explicit file must exist; a missing default is fine.
    let out = opsync(
        dir.path(),
        &["--config", "missing.toml", "check-config"],
        &[],
    )
    .await;
    assert_eq!(
        text(&out.stderr),
        "error: config file missing.toml not found\n"
    );
    let empty = tempfile::tempdir().expect("temp dir");
    let out = opsync(empty.path(), &["check-config"], &[]).await;
    assert!(
        text(&out.stderr).starts_with("error: connect.host is required"),
        "{}",
        text(&out.stderr)
    );

    // OPSYNC_CONFIG names the file too; an environment variable error names the variable.
    std::fs::write(
        dir.path().join("other.toml"),
        "[connect]\nhost = \"http://127.0.0.1:9\"\n",
    )
    .expect("writes");
    let out = opsync(
        dir.path(),
        &["check-config"],
        &[
            ("OPSYNC_CONFIG", "other.toml"),
            ("OP_CONNECT_TOKEN", "t"),
            ("OPSYNC_CONNECT__MAX_IDLE_PER_HOST", "many"),
        ],
    )
    .await;
    assert_eq!(
        text(&out.stderr),
        "error: environment variable OPSYNC_CONNECT__MAX_IDLE_PER_HOST: expected a whole number, found string \"many\"\n"
    );
}

#[tokio::test]
async fn connect_dev_prints_host_and_token_then_serves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(BIN)
        .args(["connect-dev", "--listen", "127.0.0.1:0", "--quiet"])
        .current_dir(dir.path())
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("prints in time")
            .expect("reads stdout")
            .expect("a line")
    };
    let host_line = next().await;
    let token_line = next().await;
    let host = host_line
        .strip_prefix("OP_CONNECT_HOST=http://127.0.0.1:")
        .expect("host line first");
    let port: u16 = host.parse().expect("a port number");
    assert_ne!(port, 0);
    let token = token_line
        .strip_prefix("OP_CONNECT_TOKEN=")
        .expect("token line second");
    assert_eq!(token.split('.').count(), 3, "a JWT");

    // The printed pair works as is.
    let base = format!("http://127.0.0.1:{port}");
    let out = opsync(
        dir.path(),
        &["check-config", "--online"],
        &[("OP_CONNECT_HOST", &base), ("OP_CONNECT_TOKEN", token)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("  rw  Production\n"));

    child.kill().await.expect("stops");
}
