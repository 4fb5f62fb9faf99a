//! Scheduled rotation end to end, through the real `opsync` binary against the embedded Connect
//! server: `rotate now` through all steps; a failing test step rolls back; SIGKILL (the crash-test
//! hook) between every pair of steps, then a restart completes or rolls back with the target and
//! 1Password agreeing and no credential lost; the daemon runs a due slot once, not again after a
//! restart; the rotated value reaches a route's destination; the built-in `password` rotator;
//! the job's lease: a restarted process that got its predecessor's pid back (a container's PID 1)
//! takes the dead lease over at once, and a step longer than the lease's time keeps it renewed.
//!
//! The target is the test rotator guest (tests/plugin_guest/rotator) writing the password to a
//! granted directory, so the test can read what the "target" holds.

mod plugin_support;
mod sync_support;

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use opsync::app::{Engine, plugin_cache_dir};
use opsync::config::{EnvVars, LoadOptions, Loader, Overrides, RotationJob};
use opsync::connect::client::ConnectClient;
use opsync::connect::model::Item;
use opsync::connect_dev::{DevServer, Seed};
use opsync::plugin::{Plugin, sha256_hex};
use opsync::rotation::{Holder, Outcome, Rotator, Start};
use opsync::store::Store;
use sync_support::{base_config, client, connect, eventually, text, value};

const ORIGINAL: &str = "bulk-password-1-1-not-real";
const VAULT: &str = "Bulk 01";
const TITLE: &str = "Login 00001";

struct Env {
    server: DevServer,
    client: ConnectClient,
    tmp: tempfile::TempDir,
    vault_id: String,
    item_id: String,
}

impl Env {
    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn config(&self) -> PathBuf {
        self.dir().join("config.toml")
    }

    /// What the "target" holds.
    fn target(&self) -> String {
        std::fs::read_to_string(self.dir().join("target/password")).expect("target file")
    }

    fn finished(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir().join("target/finished"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn item(&self) -> Item {
        self.client
            .get_item(&self.vault_id, &self.item_id)
            .await
            .expect("get item")
    }

    /// `opsync run` on this config, its output discarded.
    fn daemon(&self) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_opsync"))
            .arg("--config")
            .arg(self.config())
            .arg("run")
            .env_remove("OP_CONNECT_HOST")
            .env_remove("OP_CONNECT_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run")
    }

    fn opsync(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsync"));
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("OP_CONNECT_HOST")
            .env_remove("OP_CONNECT_TOKEN")
            .env_remove(opsync::rotation::KILL_HOOK_ENV)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run opsync")
    }

    fn state(&self) -> Store {
        Store::open(&self.dir().join("state.db")).expect("state db")
    }

    /// This config's engine in the test process (as `rotate now` builds it), job `db` and its
    /// plugin.
    async fn engine(&self) -> (Engine, RotationJob, Plugin) {
        let settings = Loader::new(&LoadOptions {
            config_file: Some(self.config()),
            env: EnvVars::default(),
            overrides: Overrides::default(),
        })
        .expect("loader")
        .settings()
        .expect("settings");
        let job = settings
            .rotations
            .iter()
            .find(|j| j.name == "db")
            .cloned()
            .expect("job db");
        let cache = plugin_cache_dir(&settings.state.path);
        let engine = Engine::with_plugins(settings, self.state(), Some(cache), |p| p.name == "rot")
            .await
            .expect("engine");
        let plugin = engine.plugins.get("rot").cloned().expect("plugin rot");
        (engine, job, plugin)
    }
}

fn manual_start() -> Option<Start> {
    Some(Start {
        slot: chrono::Utc::now(),
        manual: true,
    })
}

/// A server with one LOGIN item, a target holding its password, and a config with one job.
async fn setup(plugin_config: &str, job_extra: &str, extra: &str) -> Env {
    let server = connect(Seed::Bulk {
        vaults: 1,
        items_per_vault: 1,
    })
    .await;
    let client = client(&server);
    let vault = client.find_vault_by_name(VAULT).await.expect("vault");
    let item = client
        .find_item_by_title(&vault.id, TITLE)
        .await
        .expect("item");
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tmp.path().join("target")).expect("target dir");
    std::fs::write(tmp.path().join("target/password"), ORIGINAL).expect("target");
    let wasm = plugin_support::rotator_wasm();
    let sha = sha256_hex(&std::fs::read(&wasm).expect("rotator wasm"));
    let config = format!(
        r#"{base}
[log]
level = "info"

[plugins.rot]
path = "{wasm}"
sha256 = "{sha}"
world = "rotator"
config = {{ target = "/t"{plugin_config} }}
grants = {{ dirs = [{{ host = "target", guest = "/t" }}] }}

[[rotation]]
name = "db"
item = "op://{VAULT}/{TITLE}"
plugin = "rot"
recipe = {{ length = 24, character_sets = ["LETTERS", "DIGITS"] }}
{job_extra}
{extra}
"#,
        base = base_config(&server, "200ms"),
        wasm = wasm.display(),
    );
    std::fs::write(tmp.path().join("config.toml"), &config).expect("config");
    Env {
        server,
        client,
        tmp,
        vault_id: vault.id,
        item_id: item.id,
    }
}

/// 1Password and the target agree on `current`; the previous value is `previous`; nothing is
/// pending.
async fn assert_settled(env: &Env, current: &str, previous: Option<&str>) {
    let item = env.item().await;
    assert_eq!(value(&item, "password").as_deref(), Some(current));
    assert_eq!(env.target(), current, "target and 1Password agree");
    assert_eq!(
        value(&item, "opsync_previous_password").as_deref(),
        previous
    );
    assert!(
        value(&item, "opsync_pending_password").is_none(),
        "no pending value left"
    );
    assert!(value(&item, "opsync_rotation_key").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_now_runs_every_step_and_keeps_the_previous_value() {
    let env = setup("", "schedule = \"@yearly\"", "").await;
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded"));
    let item = env.item().await;
    let new = value(&item, "password").expect("password");
    assert_ne!(new, ORIGINAL);
    assert_eq!(new.len(), 24, "the job's recipe");
    assert!(new.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_settled(&env, &new, Some(ORIGINAL)).await;
    assert_eq!(
        value(&item, "opsync_rotation_state").as_deref(),
        Some("promoted")
    );
    assert_eq!(env.finished().len(), 1, "finish ran once");
    // The section opsync owns is labelled.
    let sections = item.sections.clone().unwrap_or_default();
    assert!(
        sections
            .iter()
            .any(|s| s.id == "opsync_rotation" && s.label.as_deref() == Some("opsync rotation"))
    );

    // A second rotation moves the first new value to previous.
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let newer = value(&env.item().await, "password").expect("password");
    assert_ne!(newer, new);
    assert_settled(&env, &newer, Some(&new)).await;

    let status = env.opsync(&["rotate", "status"], &[]);
    let s = String::from_utf8_lossy(&status.stdout);
    assert!(s.contains("last result: succeeded"), "{s}");
    assert!(s.contains("in progress: none"), "{s}");
    assert!(s.contains("next run:"), "{s}");
    // No secret in the status, the logs or the state database.
    let logs = String::from_utf8_lossy(&out.stderr);
    for secret in [ORIGINAL, new.as_str(), newer.as_str()] {
        assert!(!s.contains(secret));
        assert!(!logs.contains(secret), "a value in the log:\n{logs}");
    }
    let db = std::fs::read(env.dir().join("state.db")).expect("db");
    let db = String::from_utf8_lossy(&db);
    for secret in [ORIGINAL, new.as_str(), newer.as_str()] {
        assert!(!db.contains(secret), "a value in the state database");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_step_rolls_the_target_back() {
    let env = setup(", fail = \"test\"", "schedule = \"@yearly\"", "").await;
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rolled back"), "{stdout}");
    assert!(stdout.contains("does not log in"), "{stdout}");
    assert_settled(&env, ORIGINAL, None).await;
    assert_eq!(
        value(&env.item().await, "opsync_rotation_state").as_deref(),
        Some("rolled back")
    );
    assert!(env.finished().is_empty());
    let status = env.opsync(&["rotate", "status"], &[]);
    let s = String::from_utf8_lossy(&status.stdout);
    assert!(s.contains("last result: rolled_back"), "{s}");
    assert!(s.contains("does not log in"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_set_step_rolls_back_too() {
    let env = setup(", fail = \"set\"", "schedule = \"@yearly\"", "").await;
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rolled back"));
    assert_settled(&env, ORIGINAL, None).await;
}

/// Every point between two steps (and between a step's effect and its record).
const KILL_POINTS: &[&str] = &[
    "create-unrecorded",
    "create",
    "set-unrecorded",
    "set",
    "test-unrecorded",
    "test",
    "promote-unrecorded",
    "promote",
    "finish-unrecorded",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_every_pair_of_steps_then_restart_completes_once() {
    for point in KILL_POINTS {
        let env = setup("", "schedule = \"@yearly\"", "").await;
        let out = env.opsync(
            &["rotate", "now", "db"],
            &[(opsync::rotation::KILL_HOOK_ENV, point)],
        );
        assert_eq!(
            out.status.signal(),
            Some(libc_sigkill()),
            "killed at {point}: {}",
            text(&out)
        );
        let status = env.opsync(&["rotate", "status"], &[]);
        let s = String::from_utf8_lossy(&status.stdout).to_string();
        assert!(s.contains("in progress: step"), "{point}: {s}");

        // Restart: the rotation resumes at its step and completes.
        let out = env.opsync(&["rotate", "now", "db"], &[]);
        assert!(out.status.success(), "{point}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("resuming rotation"), "{point}: {stderr}");
        let new = value(&env.item().await, "password").expect("password");
        assert_ne!(new, ORIGINAL, "{point}");
        // Rotated exactly once: the previous value is the original, finish ran once.
        assert_settled(&env, &new, Some(ORIGINAL)).await;
        assert_eq!(env.finished().len(), 1, "{point}: {:?}", env.finished());
        if *point == "create-unrecorded" {
            assert!(
                stderr.contains("create is not called again"),
                "{point}: {stderr}"
            );
        }
        env.server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_rollback_then_restart_finishes_the_rollback() {
    for point in ["test", "rollback-unrecorded"] {
        let env = setup(", fail = \"test\"", "schedule = \"@yearly\"", "").await;
        let out = env.opsync(
            &["rotate", "now", "db"],
            &[(opsync::rotation::KILL_HOOK_ENV, point)],
        );
        assert_eq!(
            out.status.signal(),
            Some(libc_sigkill()),
            "{point}: {}",
            text(&out)
        );
        let out = env.opsync(&["rotate", "now", "db"], &[]);
        assert_eq!(out.status.code(), Some(1), "{point}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("rolled back"));
        assert_settled(&env, ORIGINAL, None).await;
        env.server.shutdown().await;
    }
}

fn libc_sigkill() -> i32 {
    9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promote_that_keeps_failing_stalls_and_the_next_run_completes_it() {
    let env = setup("", "schedule = \"@yearly\"", "").await;
    // Stop after `test`: the target holds the new value, 1Password still the original.
    let out = env.opsync(
        &["rotate", "now", "db"],
        &[(opsync::rotation::KILL_HOOK_ENV, "test")],
    );
    assert_eq!(out.status.signal(), Some(libc_sigkill()), "{}", text(&out));
    let pending = env.target();
    assert_ne!(pending, ORIGINAL);

    // Connect fails every request: promote is tried 3 times, then the run stalls at it (it
    // never rolls back past a target that already holds the new value).
    env.server.set_faults(Duration::ZERO, 1.0);
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout.contains("stalled at step promote"), "{}", text(&out));
    assert_eq!(env.target(), pending, "the target keeps the new value");
    env.server.set_faults(Duration::ZERO, 0.0);
    let status = env.opsync(&["rotate", "status"], &[]);
    let s = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(s.contains("in progress: step promote"), "{s}");

    // Connect is back: the next run promotes and finishes, once.
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_settled(&env, &pending, Some(ORIGINAL)).await;
    assert_eq!(env.finished().len(), 1, "{:?}", env.finished());
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_a_due_slot_once_and_not_again_after_a_restart() {
    // Every 3 seconds; a missed slot may run up to an hour late.
    let env = setup("", "schedule = \"rate(3s)\"\ndeadline = \"1h\"", "").await;
    let log = env.dir().join("daemon.log");
    let start = |hook: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsync"));
        cmd.arg("--config")
            .arg(env.config())
            .arg("run")
            .env_remove("OP_CONNECT_HOST")
            .env_remove("OP_CONNECT_TOKEN")
            .env_remove(opsync::rotation::KILL_HOOK_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log"),
            );
        if let Some(h) = hook {
            cmd.env(opsync::rotation::KILL_HOOK_ENV, h);
        }
        cmd.spawn().expect("start opsync run")
    };
    // First run dies right after `set` was recorded.
    let mut child = start(Some("set"));
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(status.signal(), Some(libc_sigkill()));
    let state = env
        .state()
        .rotation_job("db", chrono::Utc::now())
        .expect("state");
    let run = state.run.expect("a rotation in progress");
    let slot = state
        .last_slot
        .expect("the slot is recorded before the work");
    assert_eq!(run.slot, slot);

    // Restart: it resumes, finishes, and later slots run too, each once.
    let mut child = start(None);
    let store = env.state();
    eventually(30, "the interrupted rotation completes", || {
        store
            .rotation_job("db", chrono::Utc::now())
            .is_ok_and(|s| s.last_success_at.is_some())
    })
    .await;
    eventually(30, "a later slot runs", || {
        store
            .rotation_job("db", chrono::Utc::now())
            .is_ok_and(|s| s.last_slot.is_some_and(|l| l > slot) && s.run.is_none())
    })
    .await;
    unsafe_kill(child.id());
    let _ = child.wait();
    // Each slot was started once: one "rotation started" line per idempotency key.
    let logs = std::fs::read_to_string(&log).expect("log");
    let keys: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("rotation started"))
        .filter_map(|l| l.split("key=").nth(1))
        .map(|k| k.split_whitespace().next().unwrap_or(k))
        .collect();
    let unique: std::collections::HashSet<&&str> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "no slot ran twice: {keys:?}");
    assert!(keys.len() >= 2, "{logs}");
    assert!(env.finished().len() >= 2, "{:?}", env.finished());
    let item = env.item().await;
    let current = value(&item, "password").expect("password");
    // Stopped between rotations or inside one: either way no value is lost.
    if value(&item, "opsync_pending_password").is_none() {
        assert_eq!(env.target(), current);
    }
    assert!(logs.contains("rotation step done"), "{logs}");
    assert!(!logs.contains(&current));
}

fn unsafe_kill(pid: u32) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_missed_past_its_deadline_is_skipped_and_one_inside_runs() {
    // A daily slot 10 minutes ago (UTC, 5-field form); the job was first seen two days ago
    // (written into the state database), so that slot was missed by the daemon's downtime.
    use chrono::Timelike as _;
    let slot = chrono::Utc::now() - chrono::Duration::minutes(10);
    let schedule = format!("{} {} * * *", slot.minute(), slot.hour());
    let env = setup(
        "",
        &format!("schedule = \"{schedule}\"\ndeadline = \"1m\""),
        "",
    )
    .await;
    let store = env.state();
    let two_days_ago = chrono::Utc::now() - chrono::Duration::days(2);
    store.rotation_job("db", two_days_ago).expect("row");
    drop(store);
    let out = env.opsync(&["rotate", "status"], &[]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("will be skipped"), "{s}");
    let mut child = env.daemon();
    let store = env.state();
    eventually(20, "the slot is recorded as skipped", || {
        store
            .rotation_job("db", chrono::Utc::now())
            .is_ok_and(|s| s.last_result.as_deref() == Some("skipped"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    unsafe_kill(child.id());
    let _ = child.wait();
    assert_settled(&env, ORIGINAL, None).await;
    assert!(env.finished().is_empty(), "a skipped slot does not run");
    let skipped = store.rotation_job("db", chrono::Utc::now()).expect("state");
    assert!(
        skipped.last_slot.is_some_and(|l| l > two_days_ago),
        "the skipped slot is recorded, so it is never run later"
    );

    // Inside its deadline the same missed slot runs once.
    let env = setup(
        "",
        &format!("schedule = \"{schedule}\"\ndeadline = \"1h\""),
        "",
    )
    .await;
    env.state().rotation_job("db", two_days_ago).expect("row");
    let mut child = env.daemon();
    let store = env.state();
    eventually(30, "the missed slot runs", || {
        store
            .rotation_job("db", chrono::Utc::now())
            .is_ok_and(|s| s.last_result.as_deref() == Some("succeeded"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    unsafe_kill(child.id());
    let _ = child.wait();
    assert_eq!(env.finished().len(), 1, "coalesced into one run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotated_value_reaches_a_route_destination() {
    let env = setup("", "schedule = \"@yearly\"", "").await;
    let config = std::fs::read_to_string(env.config()).expect("config")
        + &sync_support::file_plugin(env.dir(), "files", "files", "")
        + &format!(
            "\n[[route]]\nname = \"out\"\nvaults = [\"{VAULT}\"]\ndestinations = [\"files\"]\n"
        );
    std::fs::write(env.config(), config).expect("config");
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let new = value(&env.item().await, "password").expect("password");
    let out = env.opsync(&["once"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let file = sync_support::item_file(&env.dir().join("files"), VAULT, &env.item_id);
    let json = std::fs::read_to_string(&file).expect("delivered item");
    assert!(json.contains(&new), "the destination holds the new value");
    assert!(
        !json.contains(ORIGINAL),
        "the previous value stays in 1Password: {json}"
    );
    assert!(
        !json.contains("opsync_") && !json.contains("opsync rotation"),
        "opsync's rotation section never leaves through a route: {json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_password_rotator_generates_per_the_recipe() {
    let env = setup("", "schedule = \"@yearly\"", "").await;
    let config = std::fs::read_to_string(env.config()).expect("config");
    let config = config.replace("plugin = \"rot\"", "plugin = \"pw\"")
        + "\n[plugins.pw]\nbuiltin = \"password\"\nworld = \"rotator\"\n";
    let config = config.replace(
        "recipe = { length = 24, character_sets = [\"LETTERS\", \"DIGITS\"] }",
        "recipe = { length = 40, character_sets = [\"DIGITS\"] }",
    );
    std::fs::write(env.config(), config).expect("config");
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let item = env.item().await;
    let new = value(&item, "password").expect("password");
    assert_eq!(new.len(), 40);
    assert!(new.chars().all(|c| c.is_ascii_digit()), "digits only");
    assert_eq!(
        value(&item, "opsync_previous_password").as_deref(),
        Some(ORIGINAL)
    );
    // The password rotator takes no config keys.
    let config =
        std::fs::read_to_string(env.config()).expect("config") + "config = { length = \"12\" }\n";
    std::fs::write(env.config(), config).expect("config");
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("takes no config keys"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_now_respects_another_process_holding_the_job() {
    let env = setup("", "schedule = \"@yearly\"", "").await;
    // A live process (this test) holds the lease.
    let store = env.state();
    let now = chrono::Utc::now();
    let this_test = Holder::this_process();
    assert!(
        store
            .rotation_acquire(
                "db",
                &this_test.lease("someone-else", now + chrono::Duration::minutes(5)),
                now,
                |_| true,
            )
            .expect("lease")
    );
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("another process"));
    assert_settled(&env, ORIGINAL, None).await;
    store
        .rotation_release("db", "someone-else")
        .expect("release");
    let out = env.opsync(&["rotate", "now", "db"], &[]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_by_a_previous_process_with_our_pid_is_taken_over_at_once() {
    let env = setup("", "schedule = \"@yearly\"", "").await;
    let (engine, job, plugin) = env.engine().await;
    let rotator = Rotator::new(engine.client.clone(), engine.store.clone());
    let me = rotator.holder().clone();
    // The previous process (a container's PID 1 before its restart) held the job: our pid, this
    // host's boot, but its own instance id, and five minutes left on the lease.
    let previous = Holder::new("previous-instance", me.pid(), me.place().clone());
    let now = chrono::Utc::now();
    let left = previous.lease("previous-owner", now + chrono::Duration::minutes(5));
    assert!(
        env.state()
            .rotation_acquire("db", &left, now, |_| true)
            .expect("the previous process's lease")
    );
    let t0 = Instant::now();
    let outcome = rotator
        .run(&job, &plugin, manual_start())
        .await
        .expect("run");
    assert_eq!(outcome, Outcome::Succeeded, "not Busy for five minutes");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    let new = value(&env.item().await, "password").expect("password");
    assert_settled(&env, &new, Some(ORIGINAL)).await;
    assert_eq!(
        env.state().rotation_job("db", now).expect("state").lease,
        None
    );

    // Another runner of this very process (same instance id) is alive, whatever the pid says.
    let sibling = me.lease("sibling-runner", now + chrono::Duration::minutes(5));
    assert!(
        env.state()
            .rotation_acquire("db", &sibling, now, |_| true)
            .expect("sibling")
    );
    let outcome = rotator
        .run(&job, &plugin, manual_start())
        .await
        .expect("run");
    assert_eq!(outcome, Outcome::Busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_longer_than_the_lease_ttl_keeps_its_lease_renewed() {
    let env = setup("", "schedule = \"@yearly\"", "").await;
    let (engine, job, plugin) = env.engine().await;
    let ttl = Duration::from_millis(600);
    let rotator = Rotator::new(engine.client.clone(), engine.store.clone()).with_lease_ttl(ttl);
    // Every Connect request takes longer than the lease lasts, so does every step.
    let latency = Duration::from_millis(1500);
    env.server.set_faults(latency, 0.0);
    let started = chrono::Utc::now();
    let run = tokio::spawn({
        let rotator = rotator.clone();
        async move { rotator.run(&job, &plugin, manual_start()).await }
    });
    // Twice the lease's time into the first step (its GET alone takes 1.5 s).
    tokio::time::sleep(2 * ttl).await;
    assert!(!run.is_finished());
    let store = env.state();
    let now = chrono::Utc::now();
    let held = store
        .rotation_job("db", now)
        .expect("state")
        .lease
        .expect("the run holds the lease");
    assert_eq!(held.instance.as_deref(), Some(rotator.holder().instance()));
    assert!(
        held.until > now && held.until > started + chrono::Duration::from_std(ttl).expect("ttl"),
        "renewed while the step runs: until {}, now {now}",
        held.until
    );
    // Another process on this host (whose kill(pid, 0) finds the test alive) cannot take it.
    let other = Holder::new(
        "another-process",
        rotator.holder().pid() + 1,
        rotator.holder().place().clone(),
    );
    let mut tries = 0;
    while !run.is_finished() {
        let now = chrono::Utc::now();
        let taken = store
            .rotation_acquire(
                "db",
                &other.lease("another-runner", now + chrono::Duration::minutes(5)),
                now,
                |held| other.lease_alive(held, |_| true),
            )
            .expect("acquire");
        assert!(!taken, "the lease was taken over mid-flight");
        tries += 1;
        tokio::time::sleep(ttl / 2).await;
    }
    assert!(tries >= 4, "{tries} tries");
    env.server.set_faults(Duration::ZERO, 0.0);
    let outcome = run.await.expect("task").expect("run");
    assert_eq!(outcome, Outcome::Succeeded);
    let new = value(&env.item().await, "password").expect("password");
    assert_settled(&env, &new, Some(ORIGINAL)).await;
    // Released at the end, and no renewal brings it back.
    tokio::time::sleep(ttl).await;
    assert_eq!(
        store
            .rotation_job("db", chrono::Utc::now())
            .expect("state")
            .lease,
        None
    );
}

#[test]
fn unknown_job_and_bad_schedule_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        r#"
[connect]
host = "http://127.0.0.1:9"
token = "x.y.z"

[plugins.pw]
builtin = "password"

[[rotation]]
name = "a"
item = "op://V/I"
plugin = "pw"
schedule = "0 0 * * 9"
"#,
    )
    .expect("config");
    let out = rotate_status(&config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("rotation[0].schedule"), "{err}");
    assert!(err.contains("0-7"), "{err}");
}

#[test]
fn rotate_status_words_past_future_and_overdue_times() {
    // A daily slot (6-field cron, to the second) 3 minutes ago that nothing has run yet: the
    // job was first seen two days ago and the deadline is an hour, so it is due and overdue.
    use chrono::Timelike as _;
    let tmp = tempfile::tempdir().expect("tmp");
    let now = chrono::Utc::now();
    let slot = now - chrono::Duration::minutes(3);
    let state = tmp.path().join("state.db");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[connect]
host = "http://127.0.0.1:9"
token = "x.y.z"

[state]
path = "{state}"

[plugins.pw]
builtin = "password"

[[rotation]]
name = "db"
item = "op://V/I"
plugin = "pw"
schedule = "{s} {m} {h} * * *"
deadline = "1h"
"#,
            state = state.display(),
            s = slot.second(),
            m = slot.minute(),
            h = slot.hour(),
        ),
    )
    .expect("config");
    // This process holds the job's lease for two more days, on a run it started 5 minutes ago.
    let store = Store::open(&state).expect("state db");
    store
        .rotation_job("db", now - chrono::Duration::days(2))
        .expect("row");
    let started = now - chrono::Duration::minutes(5);
    let until = now + chrono::Duration::days(2) + chrono::Duration::minutes(10);
    let pid = std::process::id();
    let this_test = Holder::this_process();
    assert!(
        store
            .rotation_acquire("db", &this_test.lease("test", until), started, |_| true)
            .expect("lease")
    );
    store
        .rotation_begin("db", "test", "key-1", started, true, started)
        .expect("begin");
    drop(store);

    let out = rotate_status(&config);
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout);
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
    assert!(
        s.contains(&format!(
            "next run:    due now (slot {}, overdue by 3m)\n",
            stamp(slot)
        )),
        "{s}"
    );
    assert!(
        s.contains(&format!("started {} (5m ago), key key-1", stamp(started))),
        "{s}"
    );
    assert!(
        s.contains(&format!("pid {pid} until {} (in 2 days)\n", stamp(until))),
        "{s}"
    );
    assert!(!s.contains("in 0s") && !s.contains("days ago"), "{s}");
}

/// `opsync --config <config> rotate status`, without Connect in the environment.
fn rotate_status(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsync"))
        .arg("--config")
        .arg(config)
        .args(["rotate", "status"])
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .output()
        .expect("run")
}
