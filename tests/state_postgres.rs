//! The PostgreSQL state against a real PostgreSQL server (a throwaway cluster): the schema and
//! its migrations, the leader lease and its epochs, the database's fence refusing a stale
//! leader, the lease keeper's takeovers, the replicas registry, and `opsync state migrate`
//! copying a synced SQLite state.

mod pg_support;
mod sync_support;

use std::time::Duration;

use opsync::connect_dev::Seed;
use opsync::store::Store;
use opsync::store::postgres::{
    Keeper, LEADER_LEASE, Lease, LeaseTiming, PG_SCHEMA_VERSION, PgError, Replica, Role,
    STATE_TABLES, Standing, fence, lease_row, migrate, seen,
};
use pg_support::Database;
use sync_support::{base_config, connect, file_plugin, opsync_in, text};
use tokio::time::Instant;

async fn client(db: &Database) -> tokio_postgres::Client {
    let mut client = db.target().connect().await.expect("connects");
    migrate(&mut client).await.expect("migrates");
    client
}

fn leader(epoch: i64) -> impl Fn(&Standing) -> bool {
    move |s| matches!(s, Standing::Leader { epoch: e, .. } if *e == epoch)
}

/// A write a leader makes: fenced with its epoch, then one row of `meta`.
async fn leader_write(
    client: &mut tokio_postgres::Client,
    epoch: i64,
    value: &str,
) -> Result<(), PgError> {
    let tx = client.transaction().await.expect("begin");
    fence(&tx, LEADER_LEASE, epoch, "write as leader").await?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('written_by', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&value],
    )
    .await
    .expect("write");
    tx.commit().await.expect("commit");
    Ok(())
}

fn written_by(db: &Database) -> String {
    db.psql("SELECT value FROM meta WHERE key = 'written_by'")
}

#[tokio::test]
async fn migrating_from_several_replicas_at_once_applies_each_migration_once() {
    let db = pg_support::database();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let target = db.target();
        tasks.push(tokio::spawn(async move {
            let mut client = target.connect().await.expect("connects");
            migrate(&mut client).await
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        if t.await.expect("task").expect("migrates") == 0 {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one replica found an empty database");
    assert_eq!(
        db.psql("SELECT count(*), max(version) FROM opsync_schema"),
        format!("{PG_SCHEMA_VERSION}|{PG_SCHEMA_VERSION}")
    );
}

#[tokio::test]
async fn the_postgres_schema_has_every_column_of_the_sqlite_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(&dir.path().join("state.db")).expect("sqlite state"));
    let sqlite = rusqlite::Connection::open(dir.path().join("state.db")).expect("open");
    let db = pg_support::database();
    client(&db).await;
    for table in STATE_TABLES {
        let mut stmt = sqlite
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY name"
            ))
            .expect("prepare");
        let mut want: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("columns")
            .collect::<Result<_, _>>()
            .expect("columns");
        want.sort();
        let have = db.psql(&format!(
            "SELECT string_agg(column_name, ',' ORDER BY column_name) \
             FROM information_schema.columns WHERE table_name = '{table}'"
        ));
        assert_eq!(have, want.join(","), "table {table}");
    }
    let tables: i64 = sqlite
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(
        tables as usize,
        STATE_TABLES.len(),
        "every SQLite table is copied"
    );
}

#[tokio::test]
async fn a_free_lease_is_taken_at_epoch_1_and_renewed_at_the_same_epoch() {
    let db = pg_support::database();
    let c = client(&db).await;
    let lease = Lease::new(LEADER_LEASE, "a", Duration::from_secs(10));
    let first = lease.claim(&c).await.expect("claim");
    assert!(leader(1)(&first), "{first:?}");
    let again = lease.claim(&c).await.expect("renew");
    assert!(leader(1)(&again), "{again:?}");
    if let Standing::Leader { remaining, .. } = again {
        assert!(remaining > Duration::from_secs(9) && remaining <= Duration::from_secs(10));
    }
    let row = lease_row(&c, LEADER_LEASE)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (row.holder.as_str(), row.epoch, row.expired),
        ("a", 1, false)
    );
}

#[tokio::test]
async fn a_held_lease_is_refused_until_it_runs_out_then_taken_at_a_new_epoch() {
    let db = pg_support::database();
    let c = client(&db).await;
    let a = Lease::new(LEADER_LEASE, "a", Duration::from_millis(600));
    let b = Lease::new(LEADER_LEASE, "b", Duration::from_millis(600));
    assert!(leader(1)(&a.claim(&c).await.expect("a claims")));
    assert_eq!(
        b.claim(&c).await.expect("b claims"),
        Standing::Follower {
            holder: Some("a".into()),
            epoch: 1
        }
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(leader(2)(&b.claim(&c).await.expect("b takes over")));
    assert_eq!(
        a.claim(&c).await.expect("a comes back"),
        Standing::Follower {
            holder: Some("b".into()),
            epoch: 2
        },
        "the old leader learns it lost the lease"
    );
}

#[tokio::test]
async fn a_holder_that_comes_back_after_its_lease_ran_out_leads_at_a_new_epoch() {
    let db = pg_support::database();
    let c = client(&db).await;
    let a = Lease::new(LEADER_LEASE, "a", Duration::from_millis(300));
    assert!(leader(1)(&a.claim(&c).await.expect("claim")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        leader(2)(&a.claim(&c).await.expect("claim again")),
        "writes begun under epoch 1 must not pass the fence any more"
    );
}

#[tokio::test]
async fn concurrent_claims_elect_exactly_one_leader() {
    let db = pg_support::database();
    client(&db).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let target = db.target();
        tasks.push(tokio::spawn(async move {
            let c = target.connect().await.expect("connects");
            Lease::new(LEADER_LEASE, &format!("r{i}"), Duration::from_secs(10))
                .claim(&c)
                .await
                .expect("claim")
        }));
    }
    let mut leaders = 0;
    for t in tasks {
        match t.await.expect("task") {
            Standing::Leader { epoch, .. } => {
                assert_eq!(epoch, 1);
                leaders += 1;
            }
            Standing::Follower { holder, epoch } => {
                assert!(holder.is_some());
                assert_eq!(epoch, 1);
            }
        }
    }
    assert_eq!(leaders, 1);
}

#[tokio::test]
async fn the_database_refuses_a_write_fenced_with_a_stale_epoch() {
    let db = pg_support::database();
    let mut ca = client(&db).await;
    let cb = client(&db).await;
    let a = Lease::new(LEADER_LEASE, "a", Duration::from_millis(500));
    let b = Lease::new(LEADER_LEASE, "b", Duration::from_secs(10));
    assert!(leader(1)(&a.claim(&ca).await.expect("a leads")));
    leader_write(&mut ca, 1, "a")
        .await
        .expect("the leader writes");
    assert_eq!(written_by(&db), "a");

    // a pauses past its lease; b takes over.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(leader(2)(&b.claim(&cb).await.expect("b takes over")));
    let refused = leader_write(&mut ca, 1, "a again").await;
    assert!(
        matches!(refused, Err(PgError::Fenced { epoch: 1, .. })),
        "{refused:?}"
    );
    assert_eq!(written_by(&db), "a", "the stale write left nothing behind");
    let mut cb = cb;
    leader_write(&mut cb, 2, "b")
        .await
        .expect("the new leader writes");
    assert_eq!(written_by(&db), "b");
}

#[tokio::test]
async fn a_leader_whose_lease_ran_out_cannot_write_even_before_a_takeover() {
    let db = pg_support::database();
    let mut c = client(&db).await;
    let a = Lease::new(LEADER_LEASE, "a", Duration::from_millis(300));
    assert!(leader(1)(&a.claim(&c).await.expect("a leads")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = leader_write(&mut c, 1, "late").await;
    assert!(
        matches!(refused, Err(PgError::Fenced { .. })),
        "{refused:?}"
    );
    assert_eq!(
        db.psql("SELECT count(*) FROM meta WHERE key = 'written_by'"),
        "0"
    );
}

#[tokio::test]
async fn a_takeover_waits_until_the_leaders_fenced_write_commits() {
    let db = pg_support::database();
    let mut ca = client(&db).await;
    let cb = client(&db).await;
    let a = Lease::new(LEADER_LEASE, "a", Duration::from_millis(300));
    assert!(leader(1)(&a.claim(&ca).await.expect("a leads")));

    let tx = ca.transaction().await.expect("begin");
    fence(&tx, LEADER_LEASE, 1, "write")
        .await
        .expect("fence passes");
    // b tries to take over once the lease has run out, while a's write is still open.
    let takeover = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let b = Lease::new(LEADER_LEASE, "b", Duration::from_secs(10));
        let standing = b.claim(&cb).await.expect("b claims");
        (standing, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(900)).await;
    tx.execute("INSERT INTO meta VALUES ('written_by', 'a')", &[])
        .await
        .expect("write");
    let committing = Instant::now();
    tx.commit().await.expect("commit");
    let (standing, at) = takeover.await.expect("task");
    assert!(leader(2)(&standing), "{standing:?}");
    assert!(
        at >= committing,
        "the takeover went through while the fenced write was still open"
    );
}

fn keeper(db: &Database, id: &str, lease_ms: u64, renew_ms: u64) -> (Keeper, Replica) {
    let replica = Replica {
        id: id.into(),
        host: "test".into(),
        pid: 1,
        version: "test".into(),
    };
    let keeper = Keeper::new(
        db.target(),
        Lease::new(LEADER_LEASE, id, Duration::from_millis(lease_ms)),
        replica.clone(),
        LeaseTiming {
            lease: Duration::from_millis(lease_ms),
            renew_every: Duration::from_millis(renew_ms),
        },
    );
    (keeper, replica)
}

async fn until_leading(role: &mut tokio::sync::watch::Receiver<Role>) -> i64 {
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        role.wait_for(|r| r.leading().is_some()),
    )
    .await
    .expect("leads within 30 s")
    .expect("keeper running");
    r.leading().expect("leading")
}

#[tokio::test]
async fn a_follower_takes_over_within_a_lease_and_a_renewal_when_the_leader_dies() {
    let db = pg_support::database();
    client(&db).await;
    let (lease_ms, renew_ms) = (2_000, 300);
    let (ka, _) = keeper(&db, "a", lease_ms, renew_ms);
    let (kb, _) = keeper(&db, "b", lease_ms, renew_ms);
    let (_stop, shutdown) = opsync::shutdown::channel();
    let (ta, mut ra) = tokio::sync::watch::channel(Role::Follower {
        leader: None,
        epoch: 0,
    });
    let a = tokio::spawn(ka.run(ta, shutdown.clone()));
    assert_eq!(until_leading(&mut ra).await, 1);
    let (tb, mut rb) = tokio::sync::watch::channel(Role::Follower {
        leader: None,
        epoch: 0,
    });
    let b = tokio::spawn(kb.run(tb, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(3 * renew_ms)).await;
    assert_eq!(
        *rb.borrow(),
        Role::Follower {
            leader: Some("a".into()),
            epoch: 1
        }
    );

    // The leader dies without a word: its task is gone, its lease stays until it runs out.
    a.abort();
    let died = Instant::now();
    let epoch = until_leading(&mut rb).await;
    let took = died.elapsed();
    assert_eq!(epoch, 2);
    assert!(
        took <= Duration::from_millis(lease_ms + renew_ms + 1_000),
        "takeover after {took:?}, lease {lease_ms} ms, renewal {renew_ms} ms"
    );
    b.abort();
}

#[tokio::test]
async fn a_leader_that_shuts_down_hands_over_at_the_next_renewal_and_leaves_the_registry() {
    let db = pg_support::database();
    let c = client(&db).await;
    let (ka, _) = keeper(&db, "a", 10_000, 200);
    let (kb, _) = keeper(&db, "b", 10_000, 200);
    let (stop_a, shutdown_a) = opsync::shutdown::channel();
    let (_stop_b, shutdown_b) = opsync::shutdown::channel();
    let (ta, mut ra) = tokio::sync::watch::channel(Role::Follower {
        leader: None,
        epoch: 0,
    });
    let (tb, mut rb) = tokio::sync::watch::channel(Role::Follower {
        leader: None,
        epoch: 0,
    });
    let a = tokio::spawn(ka.run(ta, shutdown_a));
    assert_eq!(until_leading(&mut ra).await, 1);
    let b = tokio::spawn(kb.run(tb, shutdown_b));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ids: Vec<String> = seen(&c, Duration::from_secs(5))
        .await
        .expect("registry")
        .into_iter()
        .map(|r| r.replica.id)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");

    stop_a.trigger();
    a.await.expect("a stops");
    let handed = Instant::now();
    assert_eq!(until_leading(&mut rb).await, 2);
    assert!(
        handed.elapsed() < Duration::from_secs(5),
        "a released lease is taken at the next renewal, not after the 10 s lease"
    );
    let ids: Vec<String> = seen(&c, Duration::from_secs(5))
        .await
        .expect("registry")
        .into_iter()
        .map(|r| r.replica.id)
        .collect();
    assert_eq!(ids, vec!["b".to_owned()]);
    b.abort();
}

const ROUTE: &str = r#"
[[route]]
name = "prod"
vaults = ["Production"]
destinations = ["prod-files"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn state_migrate_copies_every_table_of_a_synced_state_and_refuses_a_second_copy() {
    let server = connect(Seed::Demo).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "{}{}{ROUTE}",
        base_config(&server, "1s"),
        file_plugin(dir.path(), "prod-files", "prod", "")
    );
    std::fs::write(dir.path().join("config.toml"), &config).expect("config");
    let once = opsync_in(dir.path(), &["once", "--no-progress"]);
    assert!(once.status.success(), "{}", text(&once));

    let db = pg_support::database();
    let pw = db.password_file.to_str().expect("utf-8");
    let args = [
        "state",
        "migrate",
        "--from",
        "sqlite:state.db",
        "--to",
        &db.url,
        "--password-file",
        pw,
    ];
    let out = opsync_in(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(!printed.contains(&db.password), "the password was printed");

    let sqlite = rusqlite::Connection::open(dir.path().join("state.db")).expect("open");
    let mut total = 0;
    for table in STATE_TABLES {
        let want: i64 = sqlite
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count");
        let have = db.psql(&format!("SELECT count(*) FROM {table}"));
        assert_eq!(have, want.to_string(), "table {table}");
        total += want;
    }
    assert!(
        printed.contains(&format!(
            "copied {total} rows in {} tables",
            STATE_TABLES.len()
        )),
        "{printed}"
    );
    for table in ["vaults", "items", "members", "ledger"] {
        assert_ne!(
            db.psql(&format!("SELECT count(*) FROM {table}")),
            "0",
            "{table}"
        );
    }
    // The same rows, not only as many.
    let max_id: i64 = sqlite
        .query_row("SELECT max(id) FROM ledger", [], |r| r.get(0))
        .expect("max id");
    let delivered: i64 = sqlite
        .query_row(
            "SELECT count(*) FROM ledger WHERE status = 'delivered'",
            [],
            |r| r.get(0),
        )
        .expect("delivered");
    assert_eq!(db.psql("SELECT max(id) FROM ledger"), max_id.to_string());
    assert_eq!(
        db.psql("SELECT count(*) FROM ledger WHERE status = 'delivered'"),
        delivered.to_string()
    );
    // New rows continue after the copied ids.
    let next = db.psql(
        "INSERT INTO ledger (route, destination, vault_id, vault_name, item_id, title, key, \
         version, kind, next_attempt_at, created_at) \
         VALUES ('r', 'd', 'v', 'V', 'i', 't', 'k', 1, 'created', 0, 0) RETURNING id",
    );
    assert_eq!(next, (max_id + 1).to_string());

    let again = opsync_in(dir.path(), &args);
    assert!(!again.status.success(), "a second copy was accepted");
    let err = text(&again);
    assert!(
        err.contains("already holds") && err.contains("copy into an empty database"),
        "{err}"
    );
}

#[test]
fn state_migrate_refuses_a_password_in_the_url_without_showing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(&dir.path().join("state.db")).expect("sqlite state"));
    std::fs::write(dir.path().join("config.toml"), "").expect("config");
    let out = opsync_in(
        dir.path(),
        &[
            "state",
            "migrate",
            "--from",
            "sqlite:state.db",
            "--to",
            "postgres://opsync:hunter2-secret@127.0.0.1:9/opsync",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out);
    assert!(err.contains("--to") && err.contains("password"), "{err}");
    assert!(!err.contains("hunter2-secret"), "{err}");
}

#[test]
fn state_migrate_names_the_server_but_not_the_password_when_the_login_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(&dir.path().join("state.db")).expect("sqlite state"));
    std::fs::write(dir.path().join("config.toml"), "").expect("config");
    let db = pg_support::database();
    std::fs::write(dir.path().join("wrong"), "not-the-password-123\n").expect("file");
    let out = opsync_in(
        dir.path(),
        &[
            "state",
            "migrate",
            "--from",
            "sqlite:state.db",
            "--to",
            &db.url,
            "--password-file",
            "wrong",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out);
    let shown = format!(
        "postgres://{}@127.0.0.1:{}/{}",
        pg_support::USER,
        pg_support::cluster().port,
        db.name
    );
    assert!(err.contains(&shown), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-password-123"), "{err}");
}

async fn tls_connect(query: &str) -> Result<tokio_postgres::Client, PgError> {
    let db = pg_support::tls_cluster().database_with(query);
    db.target().connect().await
}

#[tokio::test]
async fn verify_full_connects_over_tls_to_a_server_whose_ca_is_given() {
    let ca = pg_support::tls_cluster().ca_file.clone().expect("ca");
    let client = tls_connect(&format!("sslmode=verify-full&sslrootcert={}", ca.display()))
        .await
        .expect("connects over TLS");
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("query")
        .get(0);
    assert!(ssl, "the session is not encrypted");
}

#[tokio::test]
async fn tls_is_the_default_and_an_unknown_ca_is_refused() {
    // No sslmode: TLS with the public roots only, which did not sign the server's certificate.
    let err = tls_connect("connect_timeout=5").await.expect_err("refused");
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(text.contains("cannot connect"), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let ca = pg_support::tls_cluster().ca_file.clone().expect("ca");
    let cluster = pg_support::tls_cluster();
    let db = cluster.database_with("sslmode=disable");
    // The certificate names 127.0.0.1; connect by the name localhost.
    let url = format!(
        "postgres://{}@localhost:{}/{}?sslrootcert={}",
        pg_support::USER,
        cluster.port,
        db.name,
        ca.display()
    );
    let target = opsync::store::postgres::PgTarget::parse(
        "test",
        &url,
        &opsync::store::postgres::PasswordSource::File(db.password_file.clone()),
    )
    .expect("url");
    let err = target.connect().await.expect_err("refused");
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[test]
fn urls_that_cannot_work_are_refused_with_the_setting_named() {
    use opsync::store::postgres::{PasswordSource, PgTarget};
    let none = PasswordSource::None;
    for (url, says) in [
        ("mysql://u@h/db", "postgres://"),
        ("postgres://h/db", "no user"),
        ("postgres://u@h/", "no database"),
        (
            "postgres://u@h/db?sslmode=prefer",
            "sslmode=prefer is not supported",
        ),
        ("postgres://u@h/db?sslmode=require", "verify-full"),
        ("postgres://u@h/db?pool=3", "unknown parameter \"pool\""),
        ("postgres://u@h/db?connect_timeout=soon", "connect_timeout"),
    ] {
        let err = PgTarget::parse("state.url", url, &none)
            .expect_err(url)
            .to_string();
        assert!(err.starts_with("state.url: "), "{url}: {err}");
        assert!(err.contains(says), "{url}: {err}");
    }
    let err = PgTarget::parse(
        "state.url",
        "postgres://u@h/db",
        &PasswordSource::Env("OPSYNC_TEST_UNSET_PASSWORD_VAR".into()),
    )
    .expect_err("unset env var")
    .to_string();
    assert!(
        err.starts_with("state.password_env: ") && err.contains("OPSYNC_TEST_UNSET_PASSWORD_VAR"),
        "{err}"
    );
    let shown = PgTarget::parse("state.url", "postgres://u@db.internal:6432/state", &none)
        .expect("valid")
        .to_string();
    assert_eq!(shown, "postgres://u@db.internal:6432/state");
}

fn one_change() -> Vec<opsync::store::LedgerEntry> {
    vec![opsync::store::LedgerEntry {
        route: "r".into(),
        destination: "d".into(),
        vault_id: "v".into(),
        vault_name: "V".into(),
        item_id: "i".into(),
        title: "t".into(),
        key: "V/t".into(),
        category: "LOGIN".into(),
        tags: Vec::new(),
        version: 1,
        kind: opsync::plugin::ChangeKind::Created,
        detected_at: chrono::Utc::now(),
    }]
}

#[tokio::test]
async fn the_database_refuses_a_stores_writes_once_its_epoch_is_stale_or_it_stands_by() {
    let db = pg_support::database();
    let c = client(&db).await;
    let store = Store::open_postgres(&db.target()).expect("opens");
    let a = Lease::new(LEADER_LEASE, "a", Duration::from_millis(500));
    assert!(leader(1)(&a.claim(&c).await.expect("a leads")));

    store.lead_with(None);
    let err = store
        .enqueue(&one_change())
        .expect_err("a replica standing by");
    assert!(err.to_string().contains("is stale"), "{err}");
    assert_eq!(db.psql("SELECT count(*) FROM ledger"), "0");

    store.lead_with(Some(1));
    store.enqueue(&one_change()).expect("the leader writes");
    assert_eq!(db.psql("SELECT count(*) FROM ledger"), "1");

    // Another replica takes over; the old leader's store still carries epoch 1.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let b = Lease::new(LEADER_LEASE, "b", Duration::from_secs(10));
    assert!(leader(2)(&b.claim(&c).await.expect("b takes over")));
    let mut later = one_change();
    later[0].version = 2;
    let err = store.enqueue(&later).expect_err("a stale leader");
    assert!(err.to_string().contains("epoch 1 is stale"), "{err}");
    assert_eq!(
        db.psql("SELECT count(*) FROM ledger"),
        "1",
        "nothing of it landed"
    );
    // Reads are never fenced.
    assert_eq!(
        store.due("r", chrono::Utc::now(), 10).expect("reads").len(),
        1
    );
}
