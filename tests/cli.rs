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
async fn version_prints_crate_version_commit_date_target_and_abi() {
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
    // The commit this checkout is at (the test runs from the source tree), the build date as
    // RFC 3339 UTC, and the plugin ABI versions the host loads.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    let head = text(&head.stdout);
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` line in:\n{stdout}"))
            .to_owned()
    };
    let commit = field("commit: ");
    assert_eq!(commit.len(), 12, "{stdout}");
    assert!(
        head.trim().starts_with(&commit),
        "commit {commit} is not HEAD {head}"
    );
    let built = field("built: ");
    assert!(
        chrono::DateTime::parse_from_rfc3339(&built).is_ok(),
        "build date {built:?} is not RFC 3339"
    );
    let abi = field("plugin abi: ");
    for version in opsync::plugin::VERSIONS {
        assert!(
            abi.contains(&format!("opsync:plugin@{version}")),
            "{stdout}"
        );
    }
    assert!(abi.contains("destination, rotator, audit-sink"), "{stdout}");
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
        "  completions ",
        "  man ",
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
    assert!(stdout.ends_with("\nverdict: usable\n"), "{stdout}");

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
    assert!(
        text(&out.stdout).ends_with("\nverdict: NOT usable: 1 error (above)\n"),
        "{}",
        text(&out.stdout)
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
        "error: environment variable OPSYNC_CONNECT__MAX_IDLE_PER_HOST (connect.max_idle_per_host): expected a whole number, found string \"many\"\n"
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

#[tokio::test]
async fn bash_completion_script_loads_and_completes_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = opsync(dir.path(), &["completions", "bash"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = dir.path().join("opsync.bash");
    std::fs::write(&script, &out.stdout).expect("write");
    // Load it in a real bash and ask it to complete `opsync ro`.
    let probe = format!(
        "source {}; COMP_WORDS=(opsync ro); COMP_CWORD=1; COMP_LINE='opsync ro'; COMP_POINT=9; \
         _opsync opsync ro opsync; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let completed = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .await
        .expect("bash runs");
    assert!(completed.status.success(), "{}", text(&completed.stderr));
    let words = text(&completed.stdout);
    assert_eq!(words.trim(), "rotate", "{words}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = opsync(dir.path(), &["completions", shell], &[]).await;
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("check-config"), "{shell}");
    }
    let out = opsync(dir.path(), &["completions", "tcsh"], &[]).await;
    assert!(!out.status.success());
}

#[test]
fn completions_into_a_closed_pipe_end_quietly() {
    // `opsync completions bash | grep -q _opsync`: the reader is gone before the script is
    // written.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opsync"))
        .args(["completions", "bash"])
        .stdout(writer)
        .output()
        .expect("opsync runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn man_pages_render_for_every_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = dir.path().join("man1");
    let out = opsync(
        dir.path(),
        &["man", "--out-dir", pages.to_str().expect("utf-8")],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "opsync.1",
        "opsync-run.1",
        "opsync-rotate-now.1",
        "opsync-audit-replay.1",
    ] {
        let path = pages.join(page);
        assert!(path.is_file(), "{page} missing");
        let rendered = std::process::Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(&path)
            .env("MANWIDTH", "100")
            .output()
            .expect("man runs (scripts/setup-system.sh installs man-db)");
        let shown = text(&rendered.stdout);
        assert!(
            rendered.status.success(),
            "{page}: {}",
            text(&rendered.stderr)
        );
        assert!(
            shown.contains("NAME") && shown.contains("SYNOPSIS"),
            "{page}:\n{shown}"
        );
    }
    // Without --out-dir, opsync(1) on stdout.
    let out = opsync(dir.path(), &["man"], &[]).await;
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn json_logs_carry_values_not_debug_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("connect-dev.json");
    let mut child = Command::new(BIN)
        .args([
            "--log-format",
            "json",
            "connect-dev",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--state")
        .arg(&state)
        .current_dir(dir.path())
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("reads stderr") {
            if line.contains("connect-dev listening") {
                return line;
            }
        }
        panic!("no `connect-dev listening` line");
    })
    .await
    .expect("logs in time");
    child.kill().await.expect("stops");
    let record: serde_json::Value = serde_json::from_str(&listening).expect("a JSON log line");
    assert!(!listening.contains("Some("), "{listening}");
    assert_eq!(
        record["fields"]["state"].as_str(),
        state.to_str(),
        "{listening}"
    );
}
