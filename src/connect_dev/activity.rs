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

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::HeaderValue;
use chrono::{DateTime, SubsecRound as _, Utc};

use crate::connect::model::{
    ActivityAction, ActivityActor, ActivityResource, ActivityResult, ApiRequest, IdRef,
    ResourceType,
};
use crate::connect::token::ConnectClaims;

use super::ids;

/// Records kept in memory.
pub const CAPACITY: usize = 100_000;

/// Who made a request.
#[derive(Clone)]
pub struct Actor {
    pub claims: Arc<ConnectClaims>,
    pub user_agent: Option<HeaderValue>,
    pub ip: Option<IpAddr>,
}

/// What a request touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    None,
    Vault(String),
    Item {
        vault: String,
        item: String,
        version: Option<u64>,
    },
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
}

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
        }
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
                vault: Some(IdRef { id: vault.clone() }),
                item: None,
                item_version: None,
            }),
            Resource::Item {
                vault,
                item,
                version,
            } => Some(ActivityResource {
                resource_type: ResourceType::Item,
                vault: Some(IdRef { id: vault.clone() }),
                item: Some(IdRef { id: item.clone() }),
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
                user_agent: r
                    .actor
                    .user_agent
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
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
            user_agent: Some(HeaderValue::from_static("test/1")),
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
                Resource::Vault("v".into()),
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
