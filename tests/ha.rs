//! Several replicas of the daemon on one PostgreSQL state: one leads, all deliver. While items
//! change, a credential rotates every two seconds and the audit log is shipped to a sink, the
//! leader is killed (`kill -9`) and paused past its lease (`SIGSTOP`); another replica takes
//! over each time at a new epoch, the paused one wakes up as a follower, every item's newest
//! version reaches the destination (no change is lost), no rotation step is recorded by two
//! replicas, and the sink's cursor never passes a record the sink did not acknowledge.

mod pg_support;
mod sync_support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opsync::connect_dev::Seed;
use sync_support::{base_config, client, connect, delivered_version, file_plugin, free_port};

/// One `opsync run` process of the set.
struct Replica {
    admin: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn start(dir: &Path, n: usize) -> Replica {
        let admin = format!("127.0.0.1:{}", free_port());
        let log = dir.join(format!("replica-{n}.log"));
        let mut replica = Replica {
            admin,
            log,
            child: None,
        };
        replica.restart(dir);
        replica
    }

    fn restart(&mut self, dir: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        self.child = Some(
            Command::new(env!("CARGO_BIN_EXE_opsync"))
                .current_dir(dir)
                .args([
                    "--config",
                    "config.toml",
                    "run",
                    "--admin-listen",
                    &self.admin,
                ])
                .env("OPSYNC_LOG__LEVEL", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("opsync run starts"),
        );
    }

    fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }

    fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// What `/readyz` says about this replica's role, if it answers.
    async fn role(&self) -> Option<String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .ok()?;
        let body = client
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix("role: "))
            .map(str::to_owned)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: our own child, not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// The index of the one replica that says it leads, and its epoch, once exactly one does.
async fn leader(replicas: &[Replica], skip: Option<usize>) -> (usize, u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut leading = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if Some(i) == skip || r.child.is_none() {
                continue;
            }
            if let Some(role) = r.role().await
                && let Some(epoch) = role
                    .strip_prefix("leader (epoch ")
                    .and_then(|e| e.strip_suffix(')'))
            {
                leading.push((i, epoch.parse::<u64>().expect("epoch")));
            }
        }
        if leading.len() == 1 {
            return leading[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single leader within 60 s: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An audit webhook that acknowledges every batch, keeping the request ids it acknowledged.
struct AuditReceiver {
    received: Arc<Mutex<HashSet<String>>>,
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl AuditReceiver {
    async fn start() -> AuditReceiver {
        let received = Arc::new(Mutex::new(HashSet::new()));
        let app = axum::Router::new()
            .route("/ingest", axum::routing::post(acknowledge))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AuditReceiver {
            received,
            port,
            task,
        }
    }

    fn has(&self, id: &str) -> bool {
        self.received.lock().expect("received").contains(id)
    }
}

impl Drop for AuditReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps the batch's request ids, then acknowledges it (so an id is kept before its 2xx).
async fn acknowledge(
    axum::extract::State(received): axum::extract::State<Arc<Mutex<HashSet<String>>>>,
    body: String,
) -> axum::http::StatusCode {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&body) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let ids = doc["data"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["requestId"].as_str().map(str::to_owned));
    received.lock().expect("received").extend(ids);
    axum::http::StatusCode::OK
}

/// The audit sink's acknowledged position must never be past a record it did not receive.
fn assert_cursor_acknowledged(db: &pg_support::Database, sink: &AuditReceiver, when: &str) {
    let acked = db.psql("SELECT coalesce(max(acked_seq), 0) FROM audit_sinks WHERE sink = 'siem'");
    let ids = db.psql(&format!(
        "SELECT coalesce(string_agg(request_id, ' '), '') FROM audit_outbox \
         WHERE seq <= {acked} AND (for_sink IS NULL OR for_sink = 'siem')"
    ));
    let missing: Vec<&str> = ids
        .split(' ')
        .filter(|id| !id.is_empty() && !sink.has(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{when}: the sink's cursor {acked} is past records it never acknowledged: {missing:?}"
    );
}

/// What each rotation run's log lines say: every run started once, every step recorded once.
fn assert_rotation_steps_recorded_once(replicas: &[Replica]) -> usize {
    let all = logs(replicas);
    let field = |line: &str, name: &str| -> Option<String> {
        let rest = &line[line.find(&format!(" {name}="))? + name.len() + 2..];
        Some(rest.split(' ').next()?.trim_matches('"').to_owned())
    };
    let mut started = HashSet::new();
    let mut steps = HashSet::new();
    let mut finished = 0;
    for line in all.lines() {
        if line.contains("rotation started") {
            let key = field(line, "key").expect("a started rotation names its key");
            assert!(
                started.insert(key.clone()),
                "rotation {key} started twice:\n{all}"
            );
        } else if line.contains("rotation step done") {
            let key = field(line, "key").expect("a step names its rotation");
            let step = field(line, "step").expect("a step names itself");
            assert!(
                steps.insert((key.clone(), step.clone())),
                "step {step} of rotation {key} recorded twice:\n{all}"
            );
        } else if line.contains("rotation finished") {
            finished += 1;
        }
    }
    finished
}

fn logs(replicas: &[Replica]) -> String {
    replicas
        .iter()
        .map(|r| std::fs::read_to_string(&r.log).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_lose_no_change_while_leaders_are_killed_and_paused() {
    let server = connect(Seed::Bulk {
        vaults: 1,
        items_per_vault: 51,
    })
    .await;
    let db = pg_support::database();
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = AuditReceiver::start().await;
    let config = postgres_config(&server, dir.path(), &db) + &rotation_and_audit(sink.port);
    std::fs::write(dir.path().join("config.toml"), &config).expect("config");

    let mut replicas = vec![Replica::start(dir.path(), 0)];
    let (first, epoch) = leader(&replicas, None).await;
    assert_eq!((first, epoch), (0, 1));
    replicas.push(Replica::start(dir.path(), 1));
    replicas.push(Replica::start(dir.path(), 2));

    // 1,000 changes over the 50 items, a few milliseconds apart, while leaders fail.
    let connect = client(&server);
    let vault = connect.find_vault_by_name("Bulk 01").await.expect("vault");
    // The last item rotates; the others change.
    let items: Vec<String> = connect
        .list_items(&vault.id, None)
        .await
        .expect("items")
        .into_iter()
        .filter(|i| i.title != ROTATED)
        .map(|i| i.id)
        .collect();
    assert_eq!(items.len(), 50);
    let changer = {
        let (connect, vault_id, items) = (connect.clone(), vault.id.clone(), items.clone());
        tokio::spawn(async move {
            let mut newest: HashMap<String, u64> = HashMap::new();
            for n in 0..1000 {
                let id = &items[n % items.len()];
                let item =
                    sync_support::set_secret(&connect, &vault_id, id, &format!("value-{n}")).await;
                newest.insert(id.clone(), item.version);
                tokio::time::sleep(Duration::from_millis(8)).await;
            }
            newest
        })
    };

    let mut epochs = vec![epoch];
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (was, _) = leader(&replicas, None).await;
        replicas[was].kill();
        let killed = Instant::now();
        let (now, epoch) = leader(&replicas, Some(was)).await;
        assert_ne!(now, was);
        epochs.push(epoch);
        eprintln!(
            "round {round}: replica {now} leads at epoch {epoch} {:?} after the kill",
            killed.elapsed()
        );
        replicas[was].restart(dir.path());
        assert_cursor_acknowledged(&db, &sink, &format!("after kill {round}"));
    }

    // Pause the leader past its lease; another takes over; the paused one wakes as a follower.
    let (paused, _) = leader(&replicas, None).await;
    replicas[paused].signal(libc::SIGSTOP);
    let (now, epoch) = leader(&replicas, Some(paused)).await;
    assert_ne!(now, paused);
    epochs.push(epoch);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_cursor_acknowledged(&db, &sink, "while the old leader is paused");
    replicas[paused].signal(libc::SIGCONT);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let role = replicas[paused].role().await.unwrap_or_default();
        if role.starts_with("follower") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the paused leader did not step down: {role}\n{}",
            logs(&replicas)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        epochs.windows(2).all(|w| w[1] > w[0]),
        "each takeover has a newer epoch: {epochs:?}"
    );

    let newest = changer.await.expect("changes made");
    let root = dir.path().join("out");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let behind: Vec<(&String, Option<u64>, u64)> = newest
            .iter()
            .filter_map(|(id, &version)| {
                let path = sync_support::item_file(&root, "Bulk 01", id);
                let got = delivered_version(&path);
                (got != Some(version)).then_some((id, got, version))
            })
            .collect();
        if behind.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "items not at their newest version after 90 s: {behind:?}\nsessions:\n{}\n{}",
            db.psql(
                "SELECT application_name, state, wait_event_type, wait_event, \
                 now() - xact_start, left(query, 120) FROM pg_stat_activity \
                 WHERE datname = current_database()"
            ),
            logs(&replicas)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every change is delivered or superseded by a newer one; none is pending or dead.
    assert_eq!(
        db.psql("SELECT count(*) FROM ledger WHERE status IN ('pending', 'dead')"),
        "0",
        "{}",
        logs(&replicas)
    );
    let last: u64 = db
        .psql("SELECT epoch FROM leases WHERE name = 'leader'")
        .parse()
        .expect("epoch");
    assert!(last >= 4, "epoch {last} after three takeovers");

    // The sink catches up with the outbox, and never got ahead of its acknowledgements.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert_cursor_acknowledged(&db, &sink, "at the end");
        let behind = db.psql(
            "SELECT count(*) FROM audit_outbox o WHERE o.seq > \
             (SELECT coalesce(max(acked_seq), 0) FROM audit_sinks WHERE sink = 'siem')",
        );
        if behind == "0" && db.psql("SELECT count(*) FROM audit_outbox") != "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the audit sink is {behind} records behind after 60 s\n{}",
            logs(&replicas)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(db.psql("SELECT count(*) FROM audit_dead"), "0");
    let rotations = assert_rotation_steps_recorded_once(&replicas);
    assert!(rotations > 0, "no rotation finished\n{}", logs(&replicas));
}

/// The item the storm test rotates.
const ROTATED: &str = "Login 00051";

/// A rotation of [`ROTATED`] every two seconds, and the audit log shipped to `port`.
fn rotation_and_audit(port: u16) -> String {
    format!(
        r#"
[plugins.pw]
builtin = "password"
world = "rotator"

[[rotation]]
name = "storm"
item = "op://Bulk 01/{ROTATED}"
plugin = "pw"
schedule = "*/2 * * * * *"
deadline = "1m"

[plugins.siem]
builtin = "webhook-audit"
world = "audit-sink"
config = {{ url = "http://127.0.0.1:{port}/ingest", secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }}
grants = {{ http = ["http://127.0.0.1:{port}"] }}

[audit]
poll_interval = "300ms"

[[audit.sink]]
plugin = "siem"
batch_size = 100
flush_interval = "100ms"
include_own_events = true
"#
    )
}

fn postgres_config(
    server: &opsync::connect_dev::DevServer,
    dir: &Path,
    db: &pg_support::Database,
) -> String {
    format!(
        r#"{base}
[state]
url = "{url}"
password_file = "{password}"
lease = "2s"
renew_every = "500ms"
{plugin}
[[route]]
name = "bulk"
vaults = ["Bulk 01"]
destinations = ["files"]
"#,
        base = base_config(server, "300ms").replace("[state]\npath = \"state.db\"\n", ""),
        url = db.url,
        password = db.password_file.display(),
        plugin = file_plugin(dir, "files", "out", ""),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn once_on_a_postgres_state_syncs_and_is_refused_while_a_replica_leads() {
    let server = connect(Seed::Bulk {
        vaults: 1,
        items_per_vault: 20,
    })
    .await;
    let db = pg_support::database();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.toml"),
        postgres_config(&server, dir.path(), &db),
    )
    .expect("config");

    let out = sync_support::opsync_in(dir.path(), &["once", "--no-progress"]);
    assert!(out.status.success(), "{}", sync_support::text(&out));
    assert_eq!(sync_support::files_under(&dir.path().join("out")).len(), 20);
    assert_eq!(
        db.psql("SELECT count(*) FROM ledger WHERE status = 'delivered'"),
        "20"
    );
    assert_eq!(
        db.psql("SELECT epoch, expires_at <= clock_timestamp() FROM leases"),
        "1|t",
        "the cycle led at epoch 1 and gave the lease up when it ended"
    );

    let daemon = Replica::start(dir.path(), 0);
    let (_, epoch) = leader(std::slice::from_ref(&daemon), None).await;
    assert_eq!(epoch, 2);
    // `status` names the leader, its epoch and each replica with its role.
    let status = sync_support::opsync_in(dir.path(), &["status"]);
    let shown = sync_support::text(&status);
    assert!(status.status.success(), "{shown}");
    let holder = db.psql("SELECT holder FROM leases");
    assert!(
        shown.contains(&format!("leader: {holder} (epoch 2,")),
        "{shown}"
    );
    let row = shown
        .lines()
        .find(|l| l.starts_with(&holder))
        .unwrap_or_else(|| panic!("no row for {holder}: {shown}"));
    assert!(row.contains(" leader "), "{row}");

    // Claims show per replica in `status`, `status --json` and the status page.
    db.psql(&format!(
        "UPDATE ledger SET claimed_by = '{holder}', claimed_until = {until} \
         WHERE id IN (SELECT id FROM ledger ORDER BY id LIMIT 3)",
        until = chrono::Utc::now().timestamp_millis() + 600_000
    ));
    let status = sync_support::opsync_in(dir.path(), &["status"]);
    let shown = sync_support::text(&status);
    let row = shown
        .lines()
        .find(|l| l.starts_with(&holder))
        .unwrap_or_else(|| panic!("no row for {holder}: {shown}"));
    assert!(row.trim_end().ends_with("bulk: 3"), "{row}");
    let json = sync_support::opsync_in(dir.path(), &["status", "--json"]);
    assert!(json.status.success(), "{}", sync_support::text(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let state = &doc["state"];
    assert_eq!(state["backend"], "postgres", "{state}");
    assert_eq!(state["leader"]["replica"], holder.as_str(), "{state}");
    assert_eq!(state["leader"]["epoch"], 2, "{state}");
    let me = state["replicas"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == holder.as_str()))
        .unwrap_or_else(|| panic!("no replica {holder}: {state}"));
    assert_eq!(me["role"], "leader");
    assert_eq!(
        me["claims"],
        serde_json::json!([{"route": "bulk", "rows": 3}])
    );
    let page = reqwest::get(format!("http://{}/", daemon.admin))
        .await
        .expect("status page")
        .text()
        .await
        .expect("page");
    let section = page
        .split("<section id=\"replicas\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no replicas section: {page}"));
    assert!(
        section.contains(&holder) && section.contains("bulk: 3"),
        "{section}"
    );

    let refused = sync_support::opsync_in(dir.path(), &["once", "--no-progress"]);
    assert!(!refused.status.success());
    let err = sync_support::text(&refused);
    assert!(
        err.contains("leads this PostgreSQL state (epoch 2)"),
        "{err}"
    );
}
