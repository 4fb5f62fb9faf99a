//! The store's interface: every operation of the state, each dispatched to the SQLite or the
//! PostgreSQL implementation, which keep the same contract (the store's tests run on both).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::connect::model::ApiRequest;
use crate::domain::Step;
use crate::store::{
    AuditDeadLetter, Claim, ClaimCount, DeadLetter, Delivery, DeliveryId, DestinationStatus, Drift,
    Fingerprinted, Hold, JobState, KnownItem, KnownVault, Lease, LedgerEntry, Member, NewRecord,
    OutboxRecord, PollHealth, PollWrite, Replay, RouteStatus, RowUpdate, SinkCursor, SinkLag,
    SinkStart, Store, StoreError, StreamMark, TailMark, UnusablePlugin,
};

/// `impl Store` with each listed method calling the same method of the backend in use.
macro_rules! dispatch {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                #[doc = concat!("See the backends' `", stringify!($name), "`.")]
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.backend {
                        super::Backend::Sqlite(db) => db.$name($($arg),*),
                        super::Backend::Postgres(db) => db.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

dispatch! {
    fn audit_mark(&self) -> Result<TailMark, StoreError>;
    fn audit_append(&self, records: &[ApiRequest], own: bool, mark: Option<&TailMark>) -> Result<u64, StoreError>;
    fn audit_head(&self) -> Result<i64, StoreError>;
    fn audit_batch(&self, sink: &str, after: i64, limit: usize, include_own: bool) -> Result<Vec<OutboxRecord>, StoreError>;
    fn audit_compact(&self, sinks: &[String], before: DateTime<Utc>) -> Result<u64, StoreError>;
    fn fingerprinted(&self, route: &str, destination: &str, limit: usize) -> Result<Vec<Fingerprinted>, StoreError>;
    fn note_read_back(&self, route: &str, destination: &str, item_id: &str, drift: Option<Drift>, at: DateTime<Utc>) -> Result<(), StoreError>;
    fn requeue_delivered(&self, route: &str, destination: &str, item_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    fn drift_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError>;
    fn note_poll_ok(&self, at: DateTime<Utc>) -> Result<(), StoreError>;
    fn note_poll_error(&self, at: DateTime<Utc>, message: &str) -> Result<(), StoreError>;
    fn poll_health(&self) -> Result<PollHealth, StoreError>;
    fn note_unusable_plugins(&self, plugins: &[UnusablePlugin]) -> Result<(), StoreError>;
    fn unusable_plugins(&self) -> Result<Vec<UnusablePlugin>, StoreError>;
    fn known_vaults(&self) -> Result<HashMap<String, KnownVault>, StoreError>;
    fn known_items(&self, vault_id: &str) -> Result<HashMap<String, KnownItem>, StoreError>;
    fn members(&self, vault_id: &str) -> Result<Vec<Member>, StoreError>;
    fn member_counts(&self) -> Result<HashMap<String, u64>, StoreError>;
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    fn commit_poll(&self, w: &PollWrite) -> Result<u64, StoreError>;
    fn enqueue(&self, changes: &[LedgerEntry]) -> Result<(), StoreError>;
    fn due(&self, route: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    fn claim_due(&self, route: &str, claim: &Claim, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    fn release_claims(&self, route: &str, claimant: &str) -> Result<u64, StoreError>;
    fn claims(&self) -> Result<Vec<ClaimCount>, StoreError>;
    fn next_due(&self, route: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn mark_delivered(&self, id: DeliveryId, receipt_location: &str, at: DateTime<Utc>, own_event: Option<&ApiRequest>) -> Result<(), StoreError>;
    fn mark_retry(&self, id: DeliveryId, error: &str, next_attempt_at: DateTime<Utc>) -> Result<(), StoreError>;
    fn dead_letter(&self, id: DeliveryId, reason: &str, own_event: Option<&ApiRequest>) -> Result<(), StoreError>;
    fn record_updates(&self, updates: &[(DeliveryId, RowUpdate<'_>)]) -> Result<Vec<Result<(), StoreError>>, StoreError>;
    fn dead_letters(&self, route: Option<&str>) -> Result<Vec<DeadLetter>, StoreError>;
    fn find_dead_letter(&self, id: DeliveryId) -> Result<Option<DeadLetter>, StoreError>;
    fn retry_dead_letters(&self, route: Option<&str>, id: Option<DeliveryId>) -> Result<usize, StoreError>;
    fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    fn check_writable(&self) -> Result<(), StoreError>;
    fn rotation_job(&self, job: &str, now: DateTime<Utc>) -> Result<JobState, StoreError>;
    fn rotation_jobs(&self) -> Result<Vec<JobState>, StoreError>;
    fn rotation_acquire(&self, job: &str, lease: &Lease, now: DateTime<Utc>, alive: impl Fn(&Lease) -> bool) -> Result<bool, StoreError>;
    fn rotation_release(&self, job: &str, owner: &str) -> Result<(), StoreError>;
    fn rotation_begin(&self, job: &str, owner: &str, key: &str, slot: DateTime<Utc>, manual: bool, now: DateTime<Utc>) -> Result<(), StoreError>;
    fn rotation_step(&self, job: &str, owner: &str, step: Step, lease_until: DateTime<Utc>) -> Result<(), StoreError>;
    fn rotation_renew(&self, job: &str, owner: &str, lease_until: DateTime<Utc>) -> Result<(), StoreError>;
    fn rotation_attempt_failed(&self, job: &str, owner: &str, error: &str, retry_at: DateTime<Utc>) -> Result<u32, StoreError>;
    fn rotation_end(&self, job: &str, owner: &str, result: &str, error: Option<&str>, now: DateTime<Utc>) -> Result<(), StoreError>;
    fn rotation_skip(&self, job: &str, slot: DateTime<Utc>, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    fn route_status(&self) -> Result<Vec<RouteStatus>, StoreError>;
    fn destination_status(&self) -> Result<Vec<DestinationStatus>, StoreError>;
    fn holds(&self) -> Result<Vec<Hold>, StoreError>;
    fn counts(&self) -> Result<(u64, u64, u64, u64), StoreError>;
    fn audit_sink(&self, sink: &str, start: SinkStart) -> Result<SinkCursor, StoreError>;
    fn audit_sinks(&self) -> Result<Vec<SinkCursor>, StoreError>;
    fn audit_ack(&self, sink: &str, from: i64, to: i64, count: u64) -> Result<bool, StoreError>;
    fn audit_sink_failed(&self, sink: &str, error: &str) -> Result<(), StoreError>;
    fn audit_dead_letter(&self, sink: &str, from: i64, record: &OutboxRecord, reason: &str) -> Result<bool, StoreError>;
    fn audit_dead_letters(&self, sink: &str) -> Result<Vec<AuditDeadLetter>, StoreError>;
    fn audit_lag(&self, sink: &str, include_own: bool) -> Result<Option<SinkLag>, StoreError>;
    fn audit_rewind(&self, sinks: &[String], since: DateTime<Utc>) -> Result<Vec<(String, i64, i64)>, StoreError>;
    fn audit_stream(&self, stream: &str) -> Result<Option<StreamMark>, StoreError>;
    fn audit_append_stream(&self, stream: &str, records: &[NewRecord], cursor: &str) -> Result<u64, StoreError>;
    fn audit_replay_ask(&self, stream: &str, sinks: &[String], start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<i64>, StoreError>;
    fn audit_replays_open(&self) -> Result<Vec<Replay>, StoreError>;
    fn audit_replays(&self) -> Result<Vec<Replay>, StoreError>;
    fn audit_replay_page(&self, id: i64, sink: &str, records: &[NewRecord], cursor: &str, done: bool) -> Result<u64, StoreError>;
    fn audit_replay_failed(&self, id: i64, reason: &str) -> Result<(), StoreError>;
}
