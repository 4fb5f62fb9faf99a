//! The record streams: compact records in time order, bounded per stream, read by position.
//!
//! A record is 32 bytes: its time, a shared [`Actor`] and what happened. Its position (`seq`)
//! is implicit (the first kept position plus its index), its UUID is derived from the stream
//! and position, and seeded records derive everything else from their position at render time,
//! so neither history nor paging allocates per record beyond the page being answered.

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rand::Rng as _;
use serde::Serialize;

use super::super::activity::Id;
use super::Stream;

/// Who did something, from where and with what: shared by the records it made.
#[derive(Debug)]
pub struct Actor {
    pub user: Person,
    /// `user_type` / `actor_type` of v2 records.
    pub user_type: &'static str,
    pub client: Client,
    pub location: &'static Place,
    pub session: Session,
}

/// A team member: `{uuid, name, email}`.
#[derive(Debug, Clone)]
pub struct Person {
    pub uuid: String,
    pub name: String,
    pub email: String,
}

/// The `client` object of item usages and sign-in attempts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Client {
    pub app_name: String,
    pub app_version: String,
    pub platform_name: String,
    pub platform_version: String,
    pub os_name: String,
    pub os_version: String,
    pub ip_address: String,
}

/// The `location` object.
#[derive(Debug, PartialEq, Serialize)]
pub struct Place {
    pub country: &'static str,
    pub region: &'static str,
    pub city: &'static str,
    pub latitude: f64,
    pub longitude: f64,
}

/// The `session` object of audit events (and `session_uuid` of sign-in attempts).
#[derive(Debug, Clone)]
pub struct Session {
    pub uuid: String,
    /// Unix nanoseconds.
    pub login_time: i64,
    pub device_uuid: String,
    pub ip: String,
}

/// An item at a version, as Connect ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRef {
    pub vault: Id,
    pub item: Id,
    pub version: u64,
}

/// The audit actions made from Connect writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemAction {
    Create,
    Update,
    Delete,
}

impl ItemAction {
    pub fn name(self) -> &'static str {
        match self {
            ItemAction::Create => "create",
            ItemAction::Update => "update",
            ItemAction::Delete => "delete",
        }
    }
}

/// What a record says happened.
#[derive(Debug, Clone)]
pub enum What {
    /// A sign-in attempt: `success`/`credentials_ok` or `credentials_failed`/`password_secret_bad`.
    SignIn { ok: bool },
    /// An item revealed (item usages).
    Reveal(Arc<ItemRef>),
    /// An item written (audit events).
    ItemWrite(ItemAction, Arc<ItemRef>),
    /// Synthetic history: everything but the time and actor derives from the position.
    Seeded,
}

/// One record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Unix nanoseconds; never less than the previous record's.
    pub at: i64,
    pub actor: Arc<Actor>,
    pub what: What,
}

/// One stream's records, oldest first.
pub struct Log {
    records: VecDeque<Record>,
    /// Position of `records[0]`.
    first_seq: u64,
    capacity: usize,
}

/// Where a page starts and what bounds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The position to read from.
    pub position: u64,
    /// Records before this time (Unix nanoseconds) are skipped.
    pub start: i64,
    /// Records at or after this time are never returned.
    pub end: i64,
}

/// A page read from a log.
pub struct Page {
    /// `(position, record)`, oldest first.
    pub records: Vec<(u64, Record)>,
    /// Where the next page starts.
    pub next: u64,
    /// More records in the window after this page.
    pub has_more: bool,
}

impl Log {
    fn new(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            first_seq: 0,
            capacity: capacity.max(1),
        }
    }

    /// Appends a record at `at` (raised to the newest record's time, keeping time order);
    /// returns its position.
    pub fn push(&mut self, at: i64, actor: Arc<Actor>, what: What) -> u64 {
        let at = self.records.back().map_or(at, |last| at.max(last.at));
        if self.records.len() >= self.capacity {
            self.records.pop_front();
            self.first_seq += 1;
        }
        self.records.push_back(Record { at, actor, what });
        self.next_seq() - 1
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The position the next record will take.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.records.len() as u64
    }

    /// The position of the first record at or after `at`.
    pub fn position_at(&self, at: i64) -> u64 {
        self.first_seq + self.records.partition_point(|r| r.at < at) as u64
    }

    /// Up to `limit` records of `window`; a position that fell off the log starts at the oldest kept.
    pub fn page(&self, window: Window, limit: usize) -> Page {
        let position = window.position.clamp(self.first_seq, self.next_seq());
        let skip = usize::try_from(position - self.first_seq).unwrap_or(usize::MAX);
        let mut in_window = self
            .records
            .iter()
            .skip(skip)
            .enumerate()
            .skip_while(|(_, r)| r.at < window.start)
            .take_while(|(_, r)| r.at < window.end);
        let records: Vec<(u64, Record)> = in_window
            .by_ref()
            .take(limit)
            .map(|(i, r)| (position + i as u64, r.clone()))
            .collect();
        let has_more = in_window.next().is_some();
        let next = records.last().map_or(position, |(seq, _)| seq + 1);
        Page {
            records,
            next,
            has_more,
        }
    }
}

/// The three streams and what rendering their records needs.
pub struct Feed {
    logs: [RwLock<Log>; 3],
    /// Mixed into derived UUIDs and seeded values: different on every run.
    pub key: u64,
    /// The account every record belongs to.
    pub account: Arc<str>,
}

impl Feed {
    pub fn new(account: Arc<str>, capacity: usize) -> Self {
        Self {
            logs: [(); 3].map(|()| RwLock::new(Log::new(capacity))),
            key: rand::thread_rng().r#gen(),
            account,
        }
    }

    pub fn read(&self, stream: Stream) -> RwLockReadGuard<'_, Log> {
        self.logs[stream.index()]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self, stream: Stream) -> RwLockWriteGuard<'_, Log> {
        self.logs[stream.index()]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn push(&self, stream: Stream, at: i64, actor: Arc<Actor>, what: What) -> u64 {
        self.write(stream).push(at, actor, what)
    }

    pub fn len(&self, stream: Stream) -> usize {
        self.read(stream).len()
    }

    /// The UUID of the record at `seq` in `stream`: unique per stream and position.
    pub fn record_uuid(&self, stream: Stream, seq: u64) -> String {
        let high = mix(self.key ^ (stream.index() as u64 + 1).wrapping_mul(0x9E37_79B9));
        // `mix` is a bijection, so distinct positions give distinct low halves.
        let low = mix(seq ^ self.key.rotate_left(17));
        derived_id(UPPER, high, low)
    }

    /// A stable pseudo-random value for the seeded record at `seq` in `stream`.
    pub fn seeded_value(&self, stream: Stream, seq: u64) -> u64 {
        mix(mix(self.key ^ stream.index() as u64) ^ seq)
    }
}

pub const UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The splitmix64 finaliser: a bijection of `u64` that scatters bits.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 26 base32 characters (the shape of 1Password UUIDs and Connect ids) from `high` and `low`;
/// for one `high`, distinct `low` values give distinct ids (the low half is scattered by a
/// bijection, so small counters do not show).
pub fn derived_id(alphabet: &[u8; 32], high: u64, low: u64) -> String {
    let value = (u128::from(high) << 64) | u128::from(mix(low ^ high));
    let mut id = String::with_capacity(26);
    for i in 0..25 {
        id.push(char::from(alphabet[((value >> (5 * i)) & 31) as usize]));
    }
    id.push(char::from(alphabet[(value >> 125) as usize & 31]));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Arc<Actor> {
        static PLACE: Place = Place {
            country: "CA",
            region: "Ontario",
            city: "Toronto",
            latitude: 43.65,
            longitude: -79.38,
        };
        Arc::new(Actor {
            user: Person {
                uuid: "U".into(),
                name: "N".into(),
                email: "e@example.com".into(),
            },
            user_type: "user",
            client: Client::default(),
            location: &PLACE,
            session: Session {
                uuid: "S".into(),
                login_time: 0,
                device_uuid: "D".into(),
                ip: String::new(),
            },
        })
    }

    fn window(position: u64) -> Window {
        Window {
            position,
            start: i64::MIN,
            end: i64::MAX,
        }
    }

    #[test]
    fn records_are_small() {
        assert!(std::mem::size_of::<Record>() <= 32);
    }

    #[test]
    fn pages_in_order_with_has_more() {
        let mut log = Log::new(100);
        for at in [10, 20, 15, 30] {
            log.push(at, actor(), What::Seeded);
        }
        let times = |p: &Page| p.records.iter().map(|(_, r)| r.at).collect::<Vec<_>>();
        let page = log.page(window(0), 2);
        assert_eq!(times(&page), [10, 20]);
        assert_eq!((page.next, page.has_more), (2, true));
        let page = log.page(window(page.next), 2);
        // Time order is kept: 15 after 20 becomes 20.
        assert_eq!(times(&page), [20, 30]);
        assert_eq!((page.next, page.has_more), (4, false));
        let page = log.page(window(4), 2);
        assert!(page.records.is_empty());
        assert_eq!((page.next, page.has_more), (4, false));
        assert_eq!(log.position_at(20), 1);
        assert_eq!(log.position_at(31), 4);
    }

    #[test]
    fn windows_bound_pages() {
        let mut log = Log::new(100);
        for at in 0..10 {
            log.push(at * 10, actor(), What::Seeded);
        }
        let page = log.page(
            Window {
                position: 0,
                start: 25,
                end: 60,
            },
            100,
        );
        assert_eq!(
            page.records.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!((page.next, page.has_more), (6, false));
        let page = log.page(
            Window {
                position: 0,
                start: 25,
                end: 60,
            },
            2,
        );
        assert_eq!((page.next, page.has_more), (5, true));
    }

    #[test]
    fn bounded_logs_drop_the_oldest_and_keep_positions() {
        let mut log = Log::new(3);
        for at in 0..10 {
            log.push(at, actor(), What::Seeded);
        }
        assert_eq!(log.len(), 3);
        let page = log.page(window(0), 10);
        assert_eq!(
            page.records
                .iter()
                .map(|(s, r)| (*s, r.at))
                .collect::<Vec<_>>(),
            [(7, 7), (8, 8), (9, 9)]
        );
        assert_eq!(page.next, 10);
    }

    #[test]
    fn record_uuids_are_unique_and_shaped() {
        let feed = Feed::new(Arc::from("ACCOUNT"), 10);
        let mut seen = std::collections::HashSet::new();
        for stream in Stream::ALL {
            for seq in 0..2000 {
                let uuid = feed.record_uuid(stream, seq);
                assert_eq!(uuid.len(), 26);
                assert!(uuid.bytes().all(|b| UPPER.contains(&b)));
                assert!(seen.insert(uuid));
            }
        }
        assert_eq!(
            feed.record_uuid(Stream::ItemUsages, 5),
            feed.record_uuid(Stream::ItemUsages, 5)
        );
        // Small counters do not show as runs of one character.
        let counted = derived_id(UPPER, mix(7), 1);
        assert!(!counted.contains("AAAA"), "{counted}");
    }
}
