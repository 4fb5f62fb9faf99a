//! The state database's schema and its migrations, numbered by SQLite's `user_version`.

use rusqlite::Connection;

use crate::store::error::{SqlContext, StoreError};

/// Each migration, in order; migration `i` brings the schema to version `i + 1`.
/// Never edit a released migration: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: detection bookkeeping, route membership, the delivery ledger, holds.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    -- What opsync last saw of each vault. No secret lives here.
    CREATE TABLE vaults (
        vault_id        TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        content_version INTEGER NOT NULL,
        listed_at       INTEGER NOT NULL
    );
    -- What opsync last saw of each item: its version and a hash of non-secret metadata
    -- (title, category, tags, state). Never a value, not even hashed.
    CREATE TABLE items (
        vault_id  TEXT NOT NULL,
        item_id   TEXT NOT NULL,
        version   INTEGER NOT NULL,
        meta_hash TEXT NOT NULL,
        PRIMARY KEY (vault_id, item_id)
    ) WITHOUT ROWID;
    -- Which items each route currently sends to its destinations, at which version and
    -- under which destination name: the route's destination keys.
    CREATE TABLE members (
        route    TEXT NOT NULL,
        vault_id TEXT NOT NULL,
        item_id  TEXT NOT NULL,
        version  INTEGER NOT NULL,
        title    TEXT NOT NULL,
        key      TEXT NOT NULL,
        PRIMARY KEY (route, vault_id, item_id)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_vault ON members (vault_id);
    -- One row per (route, destination, item, version, kind): what must reach a destination.
    CREATE TABLE ledger (
        id              INTEGER PRIMARY KEY,
        route           TEXT NOT NULL,
        destination     TEXT NOT NULL,
        vault_id        TEXT NOT NULL,
        vault_name      TEXT NOT NULL,
        item_id         TEXT NOT NULL,
        title           TEXT NOT NULL,
        key             TEXT NOT NULL,
        version         INTEGER NOT NULL,
        kind            TEXT NOT NULL,
        status          TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'dead', 'superseded')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        next_attempt_at INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        delivered_at    INTEGER,
        dead_at         INTEGER,
        location        TEXT,
        UNIQUE (route, destination, item_id, version, kind)
    );
    CREATE INDEX ledger_due ON ledger (route, status, next_attempt_at);
    CREATE INDEX ledger_item ON ledger (route, destination, item_id, status);
    -- Routes whose deletions are held by max_delete_ratio.
    CREATE TABLE holds (
        route     TEXT PRIMARY KEY,
        deletions INTEGER NOT NULL,
        total     INTEGER NOT NULL,
        max_ratio REAL NOT NULL,
        since     INTEGER NOT NULL
    );
    "#,
    // 2: rotation jobs, their persisted step and slot, the lease.
    r#"
    -- One row per rotation job: the schedule's bookkeeping and the rotation in progress. Only
    -- non-secret state: names, times, the step, the idempotency key, the last error.
    CREATE TABLE rotation_jobs (
        job              TEXT PRIMARY KEY,
        first_seen       INTEGER NOT NULL,
        -- Nominal time of the last scheduled slot started or skipped: never run twice.
        last_slot        INTEGER,
        last_result      TEXT,
        last_error       TEXT,
        last_finished_at INTEGER,
        last_success_at  INTEGER,
        -- The rotation in progress (NULL step: none).
        run_key          TEXT,
        run_slot         INTEGER,
        run_manual       INTEGER NOT NULL DEFAULT 0,
        step             TEXT CHECK (step IN ('create', 'set', 'test', 'promote', 'finish', 'rollback')),
        attempt          INTEGER NOT NULL DEFAULT 0,
        started_at       INTEGER,
        retry_at         INTEGER,
        step_error       TEXT,
        -- No overlapping runs, across processes: who holds the job, until when.
        lease_owner      TEXT,
        lease_pid        INTEGER,
        lease_until      INTEGER
    );
    "#,
    // 3: the audit export: the outbox, the tail's high-water mark, per-sink cursors, dead records.
    r#"
    -- The audit outbox: every Connect activity record the tail read and every event opsync
    -- recorded about itself, once per request id, in log order (seq, never reused). Records are
    -- API request metadata (ids, actions, addresses), never a secret value.
    CREATE TABLE audit_outbox (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL UNIQUE,
        at         INTEGER NOT NULL,
        own        INTEGER NOT NULL,
        record     TEXT NOT NULL,
        added_at   INTEGER NOT NULL
    );
    CREATE INDEX audit_outbox_at ON audit_outbox (at);
    -- The tail's high-water mark over /v1/activity (one row): the newest timestamp read, the
    -- request ids seen at it, the last Content-Range total and the log order detected.
    CREATE TABLE audit_tail (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        mark_at   TEXT,
        mark_ids  TEXT NOT NULL,
        total     INTEGER,
        log_order TEXT NOT NULL,
        polled_at INTEGER
    );
    -- One cursor per sink: the last outbox seq the sink acknowledged.
    CREATE TABLE audit_sinks (
        sink          TEXT PRIMARY KEY,
        acked_seq     INTEGER NOT NULL,
        acked_at      INTEGER,
        shipped       INTEGER NOT NULL DEFAULT 0,
        failures      INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT,
        last_error_at INTEGER,
        created_at    INTEGER NOT NULL
    );
    -- Records a sink refused permanently (one row each), kept for `audit status` and replay.
    CREATE TABLE audit_dead (
        id         INTEGER PRIMARY KEY,
        sink       TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        reason     TEXT NOT NULL,
        dead_at    INTEGER NOT NULL
    );
    CREATE INDEX audit_dead_sink ON audit_dead (sink);
    "#,
    // 4: sync engine: the last known non-secret metadata (category, tags as a JSON list) of each
    // item a route sends, on members and ledger rows, so the delete event of an item that is
    // already gone carries its real category and tags; an index for pruning delivered rows.
    r#"
    ALTER TABLE members ADD COLUMN category TEXT NOT NULL DEFAULT '';
    ALTER TABLE members ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE ledger ADD COLUMN category TEXT NOT NULL DEFAULT '';
    ALTER TABLE ledger ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    CREATE INDEX ledger_done ON ledger (status, delivered_at);
    "#,
    // 5: fewer index writes per delivery. Every index that held `status` had an entry moved on
    // each status change: three per delivered row. The due index now holds pending rows only
    // (a delivered row leaves it, nothing is added elsewhere), dead letters get a small index of
    // their own, and lookups by item use the UNIQUE index's (route, destination, item_id)
    // prefix. Pruning, `status` and the counts scan the table, as they did already.
    r#"
    DROP INDEX ledger_due;
    DROP INDEX ledger_item;
    DROP INDEX ledger_done;
    CREATE INDEX ledger_due ON ledger (route, next_attempt_at) WHERE status = 'pending';
    CREATE INDEX ledger_dead ON ledger (route, destination, item_id) WHERE status = 'dead';
    "#,
    // 6: the rotation lease names its holder by more than a pid (which a restarted container's
    // PID 1 gets back): the random id the holding process drew at start, and where its pid means
    // something (the host's boot id, its pid namespace and its hostname).
    // NULL in a lease taken before: it is judged by its pid and expiry alone.
    r#"
    ALTER TABLE rotation_jobs ADD COLUMN lease_instance TEXT;
    ALTER TABLE rotation_jobs ADD COLUMN lease_place TEXT;
    "#,
    // 7: drift detection. What each destination last confirmed it holds for an item, as a keyed
    // fingerprint (HMAC under a key kept outside this database; never a value or a plain hash),
    // and what the last read-back found.
    r#"
    CREATE TABLE fingerprints (
        route        TEXT NOT NULL,
        destination  TEXT NOT NULL,
        item_id      TEXT NOT NULL,
        vault_id     TEXT NOT NULL,
        key          TEXT NOT NULL,
        version      INTEGER NOT NULL,
        fingerprint  TEXT NOT NULL,
        delivered_at INTEGER NOT NULL,
        checked_at   INTEGER,
        -- NULL: none seen; 'changed' or 'missing' since drift_at.
        drift        TEXT CHECK (drift IN ('changed', 'missing')),
        drift_at     INTEGER,
        PRIMARY KEY (route, destination, item_id)
    ) WITHOUT ROWID;
    "#,
    // 8: the 1Password Events API as a second audit source. An outbox record says which log it
    // comes from (`activity` or an Events API stream) and keeps an Events API record as the API
    // returned it (metadata, never a value); a replayed copy is addressed to one sink. One row
    // per stream holds the API's cursor, saved in the transaction that adds what it read, and
    // one row per replay asked for by `opsync audit replay --stream` holds its progress.
    r#"
    ALTER TABLE audit_outbox ADD COLUMN source TEXT NOT NULL DEFAULT 'activity';
    ALTER TABLE audit_outbox ADD COLUMN detail TEXT;
    ALTER TABLE audit_outbox ADD COLUMN for_sink TEXT;
    CREATE TABLE audit_streams (
        stream     TEXT PRIMARY KEY,
        cursor     TEXT NOT NULL,
        read       INTEGER NOT NULL,
        newest_at  INTEGER,
        polled_at  INTEGER NOT NULL
    );
    CREATE TABLE audit_replays (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        stream     TEXT NOT NULL,
        sink       TEXT NOT NULL,
        start_time INTEGER NOT NULL,
        end_time   INTEGER NOT NULL,
        cursor     TEXT,
        added      INTEGER NOT NULL DEFAULT 0,
        asked_at   INTEGER NOT NULL,
        done_at    INTEGER,
        error      TEXT
    );
    "#,
    // 9: delivery claims. On a PostgreSQL state every replica delivers: a replica claims the
    // rows it is about to deliver until a deadline, and recording the outcome frees them. A
    // single process never claims; the columns are here so that both schemas stay the same
    // and `opsync state migrate` copies them as they are.
    r#"
    ALTER TABLE ledger ADD COLUMN claimed_by TEXT;
    ALTER TABLE ledger ADD COLUMN claimed_until INTEGER;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets the connection up (WAL, busy timeout, foreign keys) and runs pending migrations,
/// each in its own transaction together with the `user_version` bump.
pub(crate) fn prepare(conn: &mut Connection, in_memory: bool) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .op("set busy_timeout")?;
    if !in_memory {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .op("enable WAL")?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "journal mode {mode} instead of WAL"
            )));
        }
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .op("set pragmas")?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .op("read schema version")?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        // IMMEDIATE, and the version read again inside: another process opening the same new
        // database (`opsync audit status` beside a starting daemon) may have migrated meanwhile.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .op("begin migration")?;
        let now: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .op("read schema version")?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql).op("migrate schema")?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .op("bump schema version")?;
        tx.commit().op("commit migration")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Lease, Store, from_millis};

    #[test]
    fn a_lease_taken_before_version_6_survives_the_migration_without_a_holder_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).expect("open");
            for sql in &MIGRATIONS[..5] {
                conn.execute_batch(sql).expect("migrate to 5");
            }
            conn.pragma_update(None, "user_version", 5)
                .expect("version 5");
            conn.execute(
                "INSERT INTO rotation_jobs (job, first_seen, lease_owner, lease_pid, lease_until)
                 VALUES ('j', 0, 'old-owner', 42, 1000)",
                [],
            )
            .expect("lease of an old build");
        }
        let store = Store::open(&path).expect("migrates");
        let state = store.rotation_job("j", from_millis(0)).expect("state");
        assert_eq!(
            state.lease,
            Some(Lease {
                owner: "old-owner".into(),
                pid: 42,
                until: from_millis(1000),
                instance: None,
                place: None,
            })
        );
    }
}
