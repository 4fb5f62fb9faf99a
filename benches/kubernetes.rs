//! The `kubernetes-secret` destination's measurements, in one run. The embedded Connect server
//! (10 vaults x 1,000 items) and the fake Kubernetes API server of tests/kube_fake (HTTPS with
//! its own CA, as a cluster's API server) run in this process; opsync runs as its own process.
//!
//! 1. Initial sync of the 10,000 items to Secrets (`opsync once`): seconds, items/s, and API
//!    server requests per Secret, against the same job as a script around the official clients
//!    (`benches/baseline_python_kubernetes.py`: the Connect Python SDK gets every item, the
//!    Kubernetes Python client applies each Secret), and the ratio.
//! 2. An idle poll on synced state: requests to Connect and to the API server; from them, an
//!    idle hour at the default 10 s poll, beside the 1Password operator's published behaviour for
//!    the same 10,000 Secrets (a poll every 600 s, two Connect requests per secret per poll).
//!
//! Run with `cargo bench --bench kubernetes`; the Python clients come from `.venv`
//! (`scripts/sdk-tests.sh` and `scripts/setup-peers.sh` install them). Prints Markdown rows for
//! BENCHMARKS.md.

use std::path::{Path, PathBuf};

use opsync::connect_dev::{DevServer, DevServerOptions, Seed};

#[path = "../tests/kube_fake/mod.rs"]
mod kube_fake;
mod support;

use kube_fake::{KubeFake, KubeOptions};
use support::{by_method, opsync};

const VAULTS: usize = 10;
const ITEMS_PER_VAULT: usize = 1000;
const TOKEN: &str = "bench-token-0123456789abcdef";
const USER: &str = "system:serviceaccount:opsync:opsync";
/// `sync.poll_interval`'s default.
const POLL_SECONDS: u64 = 10;
/// The 1Password operator's default poll interval and its Connect requests per secret per poll.
const OPERATOR_POLL_SECONDS: u64 = 600;
const OPERATOR_REQUESTS_PER_SECRET: u64 = 2;

/// A config delivering every item to Secrets named `<vault id>.<item id>` in `namespace`.
fn write_config(dir: &Path, server: &DevServer, fake: &KubeFake, ca: &Path, ns: &str) -> PathBuf {
    let config = format!(
        r#"
[connect]
host = "{host}"
token = "{token}"

[state]
path = "state.db"

[plugins.cluster]
builtin = "kubernetes-secret"
config = {{ server = "{url}", token = "{TOKEN}", namespace = "{ns}", name = "{{{{vault_id | slug}}}}.{{{{id | slug}}}}" }}
grants = {{ http = ["{url}"], tls_ca = ["{ca}"] }}

[[route]]
name = "all"
destinations = ["cluster"]
"#,
        host = server.base_url(),
        token = server.token(),
        url = fake.url(),
        ca = ca.display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// The number in an `opsync once` summary before " Connect requests".
fn connect_requests(summary: &str) -> u64 {
    summary
        .split_once(" Connect requests")
        .and_then(|(before, _)| before.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("requests in: {summary}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = DevServer::start(DevServerOptions {
        seed: Seed::Bulk {
            vaults: VAULTS,
            items_per_vault: ITEMS_PER_VAULT,
        },
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev");
    let total = VAULTS * ITEMS_PER_VAULT;
    let fake = KubeFake::start(KubeOptions { tls: true });
    fake.add_token(TOKEN, USER);
    for ns in ["baseline", "opsync"] {
        fake.allow(USER, &["get", "create", "patch", "delete"], "secrets", ns);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, fake.ca_pem()).expect("ca");

    // 1a. The script around the official clients.
    let script_args = [
        fake.url(),
        TOKEN.to_string(),
        ca.display().to_string(),
        "baseline".to_string(),
    ];
    let (script_items, script_seconds) = tokio::task::block_in_place(|| {
        support::baseline(
            "baseline_python_kubernetes.py",
            &script_args,
            (&server.base_url(), server.token()),
        )
    });
    assert_eq!(script_items as usize, total);
    let script_requests = fake.requests().len();
    fake.reset_requests();

    // 1b. opsync's initial sync; `plugin check` first compiles the component into the cache, as
    // the first start on a machine does once.
    let config = write_config(dir, &server, &fake, &ca, "opsync");
    let (took, first) = tokio::task::block_in_place(|| {
        opsync(&config, &["plugin", "check"]);
        opsync(&config, &["once", "--no-progress"])
    });
    assert!(
        first.contains(&format!("delivered: {total} written")),
        "initial sync: {first}"
    );
    assert_eq!(fake.secrets("opsync").len(), total);
    let requests = fake.requests();
    fake.reset_requests();

    // 2. An idle poll on synced state.
    let (_, idle) = tokio::task::block_in_place(|| opsync(&config, &["once", "--no-progress"]));
    let idle_connect = connect_requests(&idle);
    let idle_api = fake.requests().len() as u64;

    let secs = took.as_secs_f64();
    let per_hour = 3600 / POLL_SECONDS;
    let operator_connect =
        total as u64 * OPERATOR_REQUESTS_PER_SECRET * (3600 / OPERATOR_POLL_SECONDS);
    println!("| measurement | opsync | script around the official clients | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| initial sync of {total} items to Secrets over HTTPS | {secs:.2} s, {:.0} items/s | {script_seconds:.2} s, {:.0} items/s | {:.1}x faster |",
        total as f64 / secs,
        total as f64 / script_seconds,
        script_seconds / secs
    );
    println!(
        "| API server requests per Secret, initial sync | {:.2} ({}) | {:.2} | |",
        requests.len() as f64 / total as f64,
        by_method(requests.iter().map(|(m, _)| m.as_str())),
        script_requests as f64 / total as f64
    );
    println!();
    println!(
        "| an idle hour, {total} Secrets | opsync (poll every {POLL_SECONDS} s) | 1Password operator (poll every {OPERATOR_POLL_SECONDS} s, published) |"
    );
    println!("| --- | --- | --- |");
    println!(
        "| Connect requests | {} ({idle_connect} per idle poll) | {operator_connect} ({OPERATOR_REQUESTS_PER_SECRET} per secret per poll) |",
        idle_connect * per_hour
    );
    println!(
        "| API server requests | {} ({idle_api} per idle poll; with `drift_check`, one GET per Secret per interval) | not published |",
        idle_api * per_hour
    );
}
