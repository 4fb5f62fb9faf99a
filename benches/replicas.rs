//! Several replicas on a PostgreSQL state against one opsync on SQLite, side by side in one run.
//! The embedded Connect server (10 vaults x 1,000 items) and a throwaway PostgreSQL 15 cluster
//! (`tests/pg_support`: initdb in a temp dir, a free 127.0.0.1 port) run beside the opsync
//! processes, which deliver through the built-in `file` plugin:
//!
//! 1. Initial sync of the 10,000 items by `opsync run`: from the first process's start to the
//!    last file written, on SQLite (one process) and on PostgreSQL with 1, 2 and 3 replicas.
//!    The same again against a Connect that answers each request after 20 ms, as a remote one
//!    does: there each delivery waits on its read of the item, and replicas add reads in flight.
//! 2. Failover with three replicas and the default lease (10 s, renewed every 3 s), polling every
//!    second: the leader is killed with SIGKILL, then timed until the new leader's first poll
//!    (its `opsync_polls_total` on /metrics). Three kills.
//! 3. The cost of an idle poll on PostgreSQL: the statements the leader's store sessions run per
//!    idle poll, and the lease keeper's per renewal, counted from the server's statement log.
//!
//! Run with `cargo bench --bench replicas`. Prints Markdown for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opsync::connect_dev::{DevServer, DevServerOptions, Seed};

#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

const VAULTS: usize = 10;
const ITEMS_PER_VAULT: usize = 1000;
const KILLS: usize = 3;
const IDLE_WINDOW: Duration = Duration::from_secs(20);
/// The remote Connect's answer time in the second initial-sync table.
const REMOTE_LATENCY: Duration = Duration::from_millis(20);

fn opsync_bin() -> std::ffi::OsString {
    std::env::var_os("OPSYNC_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_opsync").into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `[state]` for SQLite (`None`) or for the database (default lease unless `lease` is given).
fn state_section(db: Option<&pg_support::Database>) -> String {
    match db {
        None => "[state]\npath = \"state.db\"\n".to_owned(),
        Some(db) => format!(
            "[state]\nurl = \"{}\"\npassword_file = \"{}\"\n",
            db.url,
            db.password_file.display()
        ),
    }
}

fn write_config(dir: &Path, server: &DevServer, state: &str, poll: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("out")).expect("out dir");
    let vaults: Vec<String> = (1..=VAULTS).map(|i| format!("\"Bulk {i:02}\"")).collect();
    let config = format!(
        r#"
[connect]
host = "{host}"
token = "{token}"

[log]
level = "warn"

{state}
[sync]
poll_interval = "{poll}"

[plugins.files]
builtin = "file"
config = {{ format = "dotenv" }}
grants = {{ dirs = [{{ host = "out" }}] }}

[[route]]
name = "bulk"
vaults = [{vaults}]
destinations = ["files"]
name_template = "{{vault_id}}/{{item_id}}"
concurrency = 16
"#,
        host = server.base_url(),
        token = server.token(),
        vaults = vaults.join(", "),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// One `opsync run` with its admin listener on a free port.
struct Daemon {
    child: Option<Child>,
    admin: String,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let admin = format!("127.0.0.1:{}", free_port());
        let child = Command::new(opsync_bin())
            .arg("--config")
            .arg(config)
            .args(["run", "--admin-listen", &admin])
            .current_dir(config.parent().expect("dir"))
            .env_remove("OP_CONNECT_HOST")
            .env_remove("OP_CONNECT_TOKEN")
            .env_remove("OPSYNC_BENCH_BIN")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start opsync run");
        Daemon {
            child: Some(child),
            admin,
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    async fn get(&self, path: &str) -> String {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("client");
        match client
            .get(format!("http://{}{path}", self.admin))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn leads(&self) -> bool {
        self.child.is_some() && self.get("/readyz").await.contains("role: leader")
    }

    /// `opsync_polls_total` summed over its results.
    async fn polls(&self) -> u64 {
        self.get("/metrics")
            .await
            .lines()
            .filter(|l| l.starts_with("opsync_polls_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

fn files_under(root: &Path) -> usize {
    std::fs::read_dir(root)
        .map(|dirs| {
            dirs.flatten()
                .filter_map(|d| std::fs::read_dir(d.path()).ok())
                .map(|files| files.count())
                .sum()
        })
        .unwrap_or(0)
}

/// Seconds from the first replica's start until all 10,000 files are written.
async fn initial_sync(
    server: &DevServer,
    db: Option<&pg_support::Database>,
    replicas: usize,
) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), server, &state_section(db), "5s");
    let started = Instant::now();
    let daemons: Vec<Daemon> = (0..replicas).map(|_| Daemon::start(&config)).collect();
    let want = VAULTS * ITEMS_PER_VAULT;
    while files_under(&dir.path().join("out")) < want {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "initial sync stalled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed().as_secs_f64();
    drop(daemons);
    took
}

/// Seconds from SIGKILL of the leader to the new leader's first poll, per kill: the first
/// replica whose `opsync_polls_total` moves after the kill (a follower does not poll).
async fn failovers(server: &DevServer, db: &pg_support::Database) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), server, &state_section(Some(db)), "1s");
    let mut daemons: Vec<Daemon> = vec![Daemon::start(&config)];
    // The initial sync done first: a failover, not a takeover of half a sync, is timed.
    let want = VAULTS * ITEMS_PER_VAULT;
    while files_under(&dir.path().join("out")) < want || !daemons[0].leads().await {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemons.push(Daemon::start(&config));
    daemons.push(Daemon::start(&config));
    let mut took = Vec::new();
    for _ in 0..KILLS {
        // Settled: the initial sync done, the followers up.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let mut leader = None;
        for (i, d) in daemons.iter().enumerate() {
            if d.leads().await {
                leader = Some(i);
            }
        }
        let leader = leader.expect("a leader");
        let mut before = Vec::new();
        for d in &daemons {
            before.push(d.polls().await);
        }
        daemons[leader].kill();
        let killed = Instant::now();
        'found: loop {
            for (i, d) in daemons.iter().enumerate() {
                if i != leader && d.polls().await > before[i] {
                    break 'found;
                }
            }
            assert!(killed.elapsed() < Duration::from_secs(60), "no takeover");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        took.push(killed.elapsed().as_secs_f64());
        daemons[leader] = Daemon::start(&config);
    }
    took
}

/// Statements per idle poll of the leader's store sessions, and per renewal of the keeper.
async fn idle_statements(server: &DevServer, db: &pg_support::Database) -> (f64, f64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), server, &state_section(Some(db)), "1s");
    let daemon = Daemon::start(&config);
    let want = VAULTS * ITEMS_PER_VAULT;
    while files_under(&dir.path().join("out")) < want || !daemon.leads().await {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    db.psql(&format!(
        "ALTER DATABASE {} SET log_statement = 'all'",
        db.name
    ));
    // New sessions pick the setting up: restart so that every session logs.
    drop(daemon);
    let daemon = Daemon::start(&config);
    while !daemon.leads().await {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = pg_support::cluster().dir().join("server.log");
    let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let polls_before = daemon.polls().await;
    tokio::time::sleep(IDLE_WINDOW).await;
    let polls = daemon.polls().await - polls_before;
    let text = std::fs::read(&log).expect("server log");
    let window = String::from_utf8_lossy(&text[before as usize..]).into_owned();
    db.psql(&format!("ALTER DATABASE {} RESET log_statement", db.name));
    let count = |app: &str| {
        let prefix = format!("{app}|{}|", db.name);
        window
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter(|l| l.contains("LOG:  execute ") || l.contains("LOG:  statement: "))
            .count() as f64
    };
    let renewals = IDLE_WINDOW.as_secs_f64() / 3.0;
    (
        count("opsync") / polls.max(1) as f64,
        count("opsync-lease") / renewals,
        polls,
    )
}

/// One Markdown table: SQLite's time, then PostgreSQL's with 1, 2, 3... replicas against it.
fn print_sync_table(title: &str, sqlite: f64, postgres: &[f64]) {
    println!("| {title} | seconds | vs SQLite |");
    println!("| --- | --- | --- |");
    println!("| SQLite, 1 process | {sqlite:.2} | 1.00x |");
    for (i, s) in postgres.iter().enumerate() {
        println!(
            "| PostgreSQL, {} replica{} | {s:.2} | {:.2}x |",
            i + 1,
            if i == 0 { "" } else { "s" },
            s / sqlite
        );
    }
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
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();

    let sqlite = initial_sync(&server, None, 1).await;
    let mut postgres = Vec::new();
    for replicas in 1..=3 {
        let db = pg_support::database();
        postgres.push(initial_sync(&server, Some(&db), replicas).await);
    }
    let remote = DevServer::start(DevServerOptions {
        seed: Seed::Bulk {
            vaults: VAULTS,
            items_per_vault: ITEMS_PER_VAULT,
        },
        latency: REMOTE_LATENCY,
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev with latency");
    let remote_sqlite = initial_sync(&remote, None, 1).await;
    let mut remote_postgres = Vec::new();
    for replicas in 1..=3 {
        let db = pg_support::database();
        remote_postgres.push(initial_sync(&remote, Some(&db), replicas).await);
    }
    drop(remote);
    let failover = failovers(&server, &pg_support::database()).await;
    let (per_poll, per_renewal, polls) = idle_statements(&server, &pg_support::database()).await;

    println!("Machine: {cores} vCPU {cpu}; `cargo bench --bench replicas`, one run.\n");
    print_sync_table(
        "initial sync, 10,000 items (`opsync run`)",
        sqlite,
        &postgres,
    );
    println!();
    print_sync_table(
        &format!(
            "initial sync, 10,000 items, Connect answering after {} ms",
            REMOTE_LATENCY.as_millis()
        ),
        remote_sqlite,
        &remote_postgres,
    );
    let worst = failover.iter().cloned().fold(0.0, f64::max);
    println!(
        "\nFailover (lease 10 s, renewal 3 s, poll 1 s; goal <= 11 s): {} s; worst {worst:.2} s.",
        failover
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "\nIdle poll on PostgreSQL: {per_poll:.1} statements per poll ({polls} polls in {} s), \
         lease keeper {per_renewal:.1} statements per renewal.",
        IDLE_WINDOW.as_secs()
    );
}
