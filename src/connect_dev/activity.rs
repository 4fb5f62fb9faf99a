//! The activity log behind `GET /v1/activity`: one record per authenticated API request, bounded in memory.
//!
//! Choices where Connect documents nothing:
//! - Order: **newest first**. Offset 0 is the latest request, so a poller re-reads from offset 0
//!   until a page reaches records it has seen.
//! - `Content-Range`: `start-end/total`, 1-based and inclusive like the spec's example
//!   `1-50/1134`; an empty page is `0-0/total`. `total` counts the records still kept.
//! - Kept: the last [`CAPACITY`] records; older ones fall off. Not persisted across restarts.
//! - Not recorded: reads of `/v1/activity` itself (reading the log would grow it), requests
//!   without a readable token (nothing to attribute them to), 400 and 404 answers.
//! - Recorded as DENY: 403 out-of-scope vaults, 401 writes with a read-only grant, and 401 for
//!   a token this server signed that has expired.
//!
//! Recording is cheap: a record keeps the caller's claims by reference count and is only
//! turned into an `ApiRequest` when read.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::http::HeaderValue;
use chrono::{DateTime, SubsecRound as _, Utc};

use crate::connect::model::{
    ActivityAction, ActivityActor, ActivityResource, ActivityResult, ApiRequest, IdRef,
    ResourceType, is_connect_id,
};
use crate::connect::token::ConnectClaims;

use super::ids;

/// Records kept in memory.
pub const CAPACITY: usize = 100_000;

/// Who made a request.
#[derive(Clone)]
pub struct Actor {
    pub claims: Arc<ConnectClaims>,
    /// Interned by [`ActivityLog::user_agent`].
    pub user_agent: Option<Arc<str>>,
    pub ip: Option<IpAddr>,
}

/// A vault or item id, stored inline (records allocate nothing for their resource).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Id([u8; 26]);

impl Id {
    /// `None` unless `s` has the shape of a Connect id.
    pub fn parse(s: &str) -> Option<Id> {
        if !is_connect_id(s) {
            return None;
        }
        let mut bytes = [0u8; 26];
        bytes.copy_from_slice(s.as_bytes());
        Some(Id(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from a checked ASCII id.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    None,
    Vault(Id),
    Item {
        vault: Id,
        item: Id,
        version: Option<u64>,
    },
}

impl Resource {
    /// A vault; `None` when the id is malformed.
    pub fn vault(vault: &str) -> Resource {
        Id::parse(vault).map_or(Resource::None, Resource::Vault)
    }

    /// An item at `version` (unknown yet: `None`); falls back to the vault, then to nothing,
    /// when an id is malformed.
    pub fn item(vault: &str, item: &str, version: Option<u64>) -> Resource {
        match (Id::parse(vault), Id::parse(item)) {
            (Some(vault), Some(item)) => Resource::Item {
                vault,
                item,
                version,
            },
            _ => Resource::vault(vault),
        }
    }
}

struct Record {
    seq: u64,
    at: DateTime<Utc>,
    action: ActivityAction,
    result: ActivityResult,
    actor: Actor,
    resource: Resource,
}

/// The log. `server_id` is the actor id every record shows (the Connect server).
pub struct ActivityLog {
    records: Mutex<VecDeque<Record>>,
    capacity: usize,
    next_seq: AtomicU64,
    id_prefix: String,
    server_id: String,
    /// Distinct `User-Agent` values, shared by the records that carry them.
    user_agents: RwLock<HashMap<Box<[u8]>, Arc<str>>>,
}

/// Distinct user agents remembered; past this the table starts over.
const MAX_USER_AGENTS: usize = 1024;

impl ActivityLog {
    pub fn new(server_id: String) -> Self {
        Self::with_capacity(server_id, CAPACITY)
    }

    pub fn with_capacity(server_id: String, capacity: usize) -> Self {
        Self {
            records: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            next_seq: AtomicU64::new(1),
            id_prefix: ids::new_uuid_prefix(),
            server_id,
            user_agents: RwLock::new(HashMap::new()),
        }
    }

    /// The shared copy of a `User-Agent` header value (records keep no request buffers alive).
    pub fn user_agent(&self, value: &HeaderValue) -> Arc<str> {
        let bytes = value.as_bytes();
        if let Some(known) = self
            .user_agents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(bytes)
        {
            return Arc::clone(known);
        }
        let text: Arc<str> = Arc::from(String::from_utf8_lossy(bytes).as_ref());
        let mut table = self
            .user_agents
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if table.len() >= MAX_USER_AGENTS {
            table.clear();
        }
        table.insert(bytes.into(), Arc::clone(&text));
        text
    }

    pub fn record(
        &self,
        actor: &Actor,
        action: ActivityAction,
        result: ActivityResult,
        resource: Resource,
    ) {
        let record = Record {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            at: Utc::now().trunc_subsecs(3),
            action,
            result,
            actor: actor.clone(),
            resource,
        };
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() >= self.capacity {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// Appends `n` synthetic records quickly (tests and benchmarks), as a busy server would log
    /// them: unique request ids, reads and updates of made-up items by one token, `burst`
    /// records sharing each millisecond. Timestamps end at the later of now and the newest
    /// record, so the log stays in time order.
    pub fn seed(&self, n: usize, burst: usize) {
        let burst = burst.max(1);
        let claims = ConnectClaims {
            auuid: "SEEDACCOUNT".into(),
            fts: vec![],
            token: None,
            vts: vec![],
            aud: vec![],
            iat: 0,
            iss: "connect-dev".into(),
            jti: "activity-seed".into(),
            sub: String::new(),
            exp: None,
        };
        let actor = Actor {
            claims: Arc::new(claims),
            user_agent: Some(Arc::from("opsync-seed/1")),
            ip: Some(IpAddr::from([127, 0, 0, 1])),
        };
        let span = chrono::Duration::milliseconds(n.div_ceil(burst) as i64);
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let newest = records.back().map(|r| r.at);
        let now = Utc::now().trunc_subsecs(3);
        let start = newest.map_or(now - span, |t| t.max(now - span));
        let vault = Id::parse("seedvau1t00000000000000000").unwrap_or(Id([b'a'; 26]));
        for i in 0..n {
            let mut item = [b'0'; 26];
            item[..4].copy_from_slice(b"seed");
            let digits = format!("{:022}", i % 1000);
            item[4..].copy_from_slice(digits.as_bytes());
            let (action, result) = match i % 10 {
                0 => (ActivityAction::Update, ActivityResult::Success),
                9 => (ActivityAction::Read, ActivityResult::Deny),
                _ => (ActivityAction::Read, ActivityResult::Success),
            };
            if records.len() >= self.capacity {
                records.pop_front();
            }
            records.push_back(Record {
                seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                at: start + chrono::Duration::milliseconds((i / burst) as i64),
                action,
                result,
                actor: actor.clone(),
                resource: Resource::Item {
                    vault,
                    item: Id(item),
                    version: Some(1 + (i % 7) as u64),
                },
            });
        }
    }

    /// Records `offset..offset + limit`, newest first, with the `Content-Range` value.
    pub fn page(&self, offset: usize, limit: usize) -> (Vec<ApiRequest>, String) {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let total = records.len();
        let page: Vec<ApiRequest> = records
            .iter()
            .rev()
            .skip(offset)
            .take(limit)
            .map(|r| self.to_api(r))
            .collect();
        drop(records);
        let range = if page.is_empty() {
            format!("0-0/{total}")
        } else {
            format!("{}-{}/{total}", offset + 1, offset + page.len())
        };
        (page, range)
    }

    fn to_api(&self, r: &Record) -> ApiRequest {
        let resource = match &r.resource {
            Resource::None => None,
            Resource::Vault(vault) => Some(ActivityResource {
                resource_type: ResourceType::Vault,
                vault: Some(IdRef {
                    id: vault.as_str().to_owned(),
                }),
                item: None,
                item_version: None,
            }),
            Resource::Item {
                vault,
                item,
                version,
            } => Some(ActivityResource {
                resource_type: ResourceType::Item,
                vault: Some(IdRef {
                    id: vault.as_str().to_owned(),
                }),
                item: Some(IdRef {
                    id: item.as_str().to_owned(),
                }),
                item_version: *version,
            }),
        };
        ApiRequest {
            request_id: format!("{}{:012x}", self.id_prefix, r.seq),
            timestamp: r.at,
            action: r.action.clone(),
            result: r.result.clone(),
            actor: ActivityActor {
                id: self.server_id.clone(),
                account: r.actor.claims.auuid.clone(),
                jti: r.actor.claims.jti.clone(),
                user_agent: r.actor.user_agent.as_deref().unwrap_or_default().to_owned(),
                request_ip: r.actor.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            },
            resource,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(jti: &str) -> Actor {
        let claims = ConnectClaims {
            auuid: "ACCOUNT".into(),
            fts: vec![],
            token: None,
            vts: vec![],
            aud: vec![],
            iat: 0,
            iss: String::new(),
            jti: jti.into(),
            sub: String::new(),
            exp: None,
        };
        Actor {
            claims: Arc::new(claims),
            user_agent: Some(Arc::from("test/1")),
            ip: Some(IpAddr::from([127, 0, 0, 1])),
        }
    }

    #[test]
    fn newest_first_with_one_based_ranges() {
        let log = ActivityLog::new("SERVER".into());
        for i in 0..5 {
            log.record(
                &actor(&format!("t{i}")),
                ActivityAction::Read,
                ActivityResult::Success,
                Resource::vault("abcdefghijklmnopqrstuvwxyz"),
            );
        }
        let (page, range) = log.page(0, 2);
        assert_eq!(range, "1-2/5");
        assert_eq!(page[0].actor.jti, "t4");
        assert_eq!(page[1].actor.jti, "t3");
        let (page, range) = log.page(4, 10);
        assert_eq!((page.len(), range.as_str()), (1, "5-5/5"));
        assert_eq!(page[0].actor.jti, "t0");
        let (page, range) = log.page(5, 10);
        assert_eq!((page.len(), range.as_str()), (0, "0-0/5"));
        // Stable request ids, unique per record.
        let (a, _) = log.page(0, 5);
        let (b, _) = log.page(0, 5);
        assert_eq!(a, b);
        assert_eq!(a[0].request_id.len(), 36);
        assert_ne!(a[0].request_id, a[1].request_id);
        assert_eq!(a[0].actor.request_ip, "127.0.0.1");
    }

    #[test]
    fn seeded_records_come_in_bursts_with_unique_ids() {
        let log = ActivityLog::new("SERVER".into());
        log.seed(1000, 100);
        let (page, range) = log.page(0, 2000);
        assert_eq!(range, "1-1000/1000");
        let ids: std::collections::HashSet<_> = page.iter().map(|r| &r.request_id).collect();
        assert_eq!(ids.len(), 1000);
        let stamps: std::collections::HashSet<_> = page.iter().map(|r| r.timestamp).collect();
        assert_eq!(stamps.len(), 10);
        assert!(page.windows(2).all(|w| w[0].timestamp >= w[1].timestamp));
        assert!(page.iter().any(|r| r.result == ActivityResult::Deny));
    }

    #[test]
    fn user_agents_are_shared() {
        let log = ActivityLog::new("SERVER".into());
        let a = log.user_agent(&HeaderValue::from_static("connect-sdk-go/1.5.3"));
        let b = log.user_agent(&HeaderValue::from_static("connect-sdk-go/1.5.3"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "connect-sdk-go/1.5.3");
    }

    #[test]
    fn bounded() {
        let log = ActivityLog::with_capacity("SERVER".into(), 3);
        for i in 0..10 {
            log.record(
                &actor(&format!("t{i}")),
                ActivityAction::Read,
                ActivityResult::Success,
                Resource::None,
            );
        }
        let (page, range) = log.page(0, 100);
        assert_eq!(range, "1-3/3");
        assert_eq!(
            page.iter()
                .map(|r| r.actor.jti.as_str())
                .collect::<Vec<_>>(),
            ["t9", "t8", "t7"]
        );
    }
}
