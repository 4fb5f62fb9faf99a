//! The `github-actions` destination's measurements, in one run: 500 items to one repository's
//! secrets. The embedded Connect server (1 vault x 500 logins) and the fake GitHub of
//! tests/github_fake run in this process; opsync runs as its own process.
//!
//! 1. `opsync once`: seconds and requests to GitHub, against the same job as a script around the
//!    official clients (`benches/baseline_pygithub.py`: the Connect Python SDK gets every item,
//!    PyGithub's `create_secret` writes each), and the ratio.
//! 2. The same 500 items under a secondary rate limit (the fake refuses requests beyond a
//!    budget per sliding window, with `retry-after`), delivered by `opsync run`: seconds until
//!    every secret is there, requests sent, requests refused, dead letters.
//!
//! Run with `cargo bench --bench github_actions`; PyGithub and PyNaCl come from `.venv`
//! (`scripts/setup-peers.sh`), the Connect SDK too (`scripts/sdk-tests.sh`). Prints Markdown
//! rows for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opsync::connect_dev::{DevServer, DevServerOptions, Seed};

#[path = "../tests/github_fake/mod.rs"]
mod github_fake;
mod support;

use github_fake::{GitHubFake, Grant, Scope};
use support::{by_method, opsync};

const ITEMS: usize = 500;
const TOKEN: &str = "github_pat_bench_0123456789";
/// The secondary limit of step 2: requests per sliding window, and the `retry-after` it asks.
const LIMIT_REQUESTS: u32 = 150;
const LIMIT_WINDOW: Duration = Duration::from_secs(5);
const LIMIT_RETRY_AFTER: u64 = 5;

/// A config in `dir` writing every item's password to `repository`'s secrets.
fn write_config(dir: &Path, server: &DevServer, fake: &GitHubFake, repository: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let config = format!(
        r#"
[connect]
host = "{host}"
token = "{token}"

[state]
path = "state.db"

[sync]
poll_interval = "1s"

[plugins.github]
builtin = "github-actions"
config = {{ api-url = "{url}", token = "{TOKEN}", repository = "{repository}" }}
grants = {{ http = ["{url}"] }}

[[route]]
name = "all"
destinations = ["github"]
"#,
        host = server.base_url(),
        token = server.token(),
        url = fake.url(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("config");
    path
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = DevServer::start(DevServerOptions {
        seed: Seed::Bulk {
            vaults: 1,
            items_per_vault: ITEMS,
        },
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev");
    let fake = GitHubFake::start().await;
    let repos = ["acme/baseline", "acme/opsync", "acme/limited"];
    for repo in repos {
        fake.add_repo(repo);
    }
    let grants: Vec<Grant> = repos.iter().map(|r| Grant::Repo(r)).collect();
    fake.add_token(TOKEN, &grants);
    let tmp = tempfile::tempdir().expect("tempdir");

    // 1a. The script around the official clients.
    let args = [fake.url(), TOKEN.to_string(), "acme/baseline".to_string()];
    let (script_items, script_seconds) = tokio::task::block_in_place(|| {
        support::baseline(
            "baseline_pygithub.py",
            &args,
            (&server.base_url(), server.token()),
        )
    });
    assert_eq!(script_items as usize, ITEMS);
    let script_requests = fake.requests().len();
    fake.reset_requests();

    // 1b. opsync, `plugin check` first (it compiles the component into the cache once).
    let config = write_config(&tmp.path().join("opsync"), &server, &fake, "acme/opsync");
    let (took, summary) = tokio::task::block_in_place(|| {
        opsync(&config, &["plugin", "check"]);
        opsync(&config, &["once", "--no-progress"])
    });
    assert!(
        summary.contains(&format!("delivered: {ITEMS} written")),
        "{summary}"
    );
    assert_eq!(fake.secret_names(Scope::Repo("acme/opsync")).len(), ITEMS);
    let requests = fake.requests();
    fake.reset_requests();

    // 2. Under a secondary rate limit, with the daemon.
    fake.set_secondary_limit(LIMIT_REQUESTS, LIMIT_WINDOW, LIMIT_RETRY_AFTER);
    let dir = tmp.path().join("limited");
    let config_limited = write_config(&dir, &server, &fake, "acme/limited");
    tokio::task::block_in_place(|| opsync(&config_limited, &["plugin", "check"]));
    let started = Instant::now();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_opsync"))
        .arg("--config")
        .arg(&config_limited)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("opsync run");
    let limited = Scope::Repo("acme/limited");
    while fake.secret_names(limited).len() < ITEMS {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {ITEMS} secrets after 10 minutes",
            fake.secret_names(limited).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let limited_took = started.elapsed();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
    let _ = daemon.wait();
    let limited_requests = fake.requests();
    let refused = limited_requests
        .iter()
        .filter(|(_, _, status)| *status == 403 || *status == 429)
        .count();
    let (_, status) =
        tokio::task::block_in_place(|| opsync(&config_limited, &["status", "--json"]));
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    let dead = status["dead_letters"]["total"]
        .as_u64()
        .expect("dead letters");

    let secs = took.as_secs_f64();
    println!("| measurement | opsync | script around the official clients | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| {ITEMS} items to one repository's secrets | {secs:.2} s | {script_seconds:.2} s | {:.1}x faster |",
        script_seconds / secs
    );
    println!(
        "| requests to GitHub | {} ({}) | {script_requests} | |",
        requests.len(),
        by_method(requests.iter().map(|(m, _, _)| m.as_str()))
    );
    println!();
    println!(
        "| under a secondary limit of {LIMIT_REQUESTS} requests per {} s (`retry-after: {LIMIT_RETRY_AFTER}`), `opsync run` | result |",
        LIMIT_WINDOW.as_secs()
    );
    println!("| --- | --- |");
    println!(
        "| every secret written after | {:.1} s |",
        limited_took.as_secs_f64()
    );
    println!(
        "| requests sent, of which refused | {}, {refused} refused |",
        limited_requests.len()
    );
    println!(
        "| secrets lost (dead letters), secrets present | {dead}, {} of {ITEMS} |",
        fake.secret_names(limited).len()
    );
}
