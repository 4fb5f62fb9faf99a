//! opsync's own audit events (deliveries, dead letters, denied plugin requests, rotations): a
//! small API any module calls, written to the outbox beside Connect's records and shipped as
//! `audit-event`s with request id `opsync-...`. Never a secret value: ids, names and versions.
//!
//! Recording never blocks the caller: events go through a bounded channel to a writer task that
//! [`install`] starts; without one (commands other than `run`, tests) they are dropped. An event
//! still in the channel when the process is killed is lost (the delivery itself is not).

use std::sync::{Mutex, PoisonError};

use chrono::Utc;
use rand::Rng as _;
use tokio::sync::{mpsc, watch};

use crate::connect::model::{
    ActivityAction, ActivityActor, ActivityResource, ActivityResult, ApiRequest, IdRef,
    ResourceType,
};
use crate::store::Store;

/// Events waiting for the writer; past this they are dropped and counted.
const CHANNEL: usize = 10_000;
/// Most events written in one transaction.
const WRITE_BATCH: usize = 1_000;

/// Counter: own events dropped because the writer fell behind, by `action`.
pub const OWN_EVENTS_DROPPED_TOTAL: &str = "opsync_audit_own_events_dropped_total";
/// Counter: own events recorded, by `action`.
pub const OWN_EVENTS_TOTAL: &str = "opsync_audit_own_events_total";

/// What opsync did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnAction {
    /// An item version reached a destination.
    Deliver,
    /// A delivery was given up (dead letter).
    DeadLetter,
    /// A plugin's outgoing request was refused by its grants.
    Denied,
    /// A rotation finished (the new value is current in 1Password).
    Rotate,
}

impl OwnAction {
    /// The `action` string sinks receive.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnAction::Deliver => "DELIVER",
            OwnAction::DeadLetter => "DEAD_LETTER",
            OwnAction::Denied => "PLUGIN_REQUEST_DENIED",
            OwnAction::Rotate => "ROTATE",
        }
    }

    /// The `outcome` string: `SUCCESS`, `DENY` for refused requests, `FAILURE` for dead letters.
    fn outcome(self) -> ActivityResult {
        match self {
            OwnAction::Deliver | OwnAction::Rotate => ActivityResult::Success,
            OwnAction::Denied => ActivityResult::Deny,
            OwnAction::DeadLetter => ActivityResult::Other("FAILURE".into()),
        }
    }
}

/// What the event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnTarget {
    /// An item version (ids, not titles).
    Item {
        vault_id: String,
        item_id: String,
        version: u64,
    },
    /// Where a refused request went: `scheme://host:port`, never a path or query.
    Host(String),
    /// An audit record (by request id) an audit sink refused.
    Record(String),
}

/// One event. `plugin` and `route` go into the actor fields (`actor.id` = `plugin:NAME`,
/// `actor.account` = the route), the item or host into the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnEvent {
    pub action: OwnAction,
    pub plugin: String,
    pub route: Option<String>,
    pub target: OwnTarget,
}

impl OwnEvent {
    /// The record as sinks see it, with a fresh `opsync-` request id.
    pub fn to_record(&self) -> ApiRequest {
        let id: u128 = rand::thread_rng().r#gen();
        let resource = match &self.target {
            OwnTarget::Item {
                vault_id,
                item_id,
                version,
            } => ActivityResource {
                resource_type: ResourceType::Item,
                vault: Some(IdRef {
                    id: vault_id.clone(),
                }),
                item: Some(IdRef {
                    id: item_id.clone(),
                }),
                item_version: Some(*version),
            },
            OwnTarget::Host(host) => ActivityResource {
                resource_type: ResourceType::Other("HOST".into()),
                vault: None,
                item: Some(IdRef { id: host.clone() }),
                item_version: None,
            },
            OwnTarget::Record(id) => ActivityResource {
                resource_type: ResourceType::Other("AUDIT_RECORD".into()),
                vault: None,
                item: Some(IdRef { id: id.clone() }),
                item_version: None,
            },
        };
        ApiRequest {
            request_id: format!("opsync-{id:032x}"),
            timestamp: Utc::now(),
            action: ActivityAction::Other(self.action.as_str().to_owned()),
            result: self.action.outcome(),
            actor: ActivityActor {
                id: format!("plugin:{}", self.plugin),
                account: self.route.clone().unwrap_or_default(),
                jti: String::new(),
                user_agent: format!("opsync/{}", env!("CARGO_PKG_VERSION")),
                request_ip: String::new(),
            },
            resource: Some(resource),
        }
    }
}

static SENDER: Mutex<Option<mpsc::Sender<ApiRequest>>> = Mutex::new(None);

/// Records an event (non-blocking; dropped when no writer runs or it is far behind).
pub fn record(event: OwnEvent) {
    let guard = SENDER.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(sender) = guard.as_ref() else {
        return;
    };
    let action = event.action.as_str();
    match sender.try_send(event.to_record()) {
        Ok(()) => metrics::counter!(OWN_EVENTS_TOTAL, "action" => action).increment(1),
        Err(_) => metrics::counter!(OWN_EVENTS_DROPPED_TOTAL, "action" => action).increment(1),
    }
}

/// An item version reached `plugin` for `route`.
pub fn delivered(route: &str, plugin: &str, vault_id: &str, item_id: &str, version: u64) {
    record(item_event(
        OwnAction::Deliver,
        route,
        plugin,
        vault_id,
        item_id,
        version,
    ));
}

/// A delivery to `plugin` for `route` was given up.
pub fn dead_letter(route: &str, plugin: &str, vault_id: &str, item_id: &str, version: u64) {
    record(item_event(
        OwnAction::DeadLetter,
        route,
        plugin,
        vault_id,
        item_id,
        version,
    ));
}

/// A rotation by `plugin` made `version` of the item current.
pub fn rotated(plugin: &str, vault_id: &str, item_id: &str, version: u64) {
    record(OwnEvent {
        action: OwnAction::Rotate,
        plugin: plugin.to_owned(),
        route: None,
        target: OwnTarget::Item {
            vault_id: vault_id.to_owned(),
            item_id: item_id.to_owned(),
            version,
        },
    });
}

/// `plugin` tried to reach `target` (`scheme://host:port`) and its grants refused.
pub fn denied(plugin: &str, target: &str) {
    record(OwnEvent {
        action: OwnAction::Denied,
        plugin: plugin.to_owned(),
        route: None,
        target: OwnTarget::Host(target.to_owned()),
    });
}

fn item_event(
    action: OwnAction,
    route: &str,
    plugin: &str,
    vault_id: &str,
    item_id: &str,
    version: u64,
) -> OwnEvent {
    OwnEvent {
        action,
        plugin: plugin.to_owned(),
        route: Some(route.to_owned()),
        target: OwnTarget::Item {
            vault_id: vault_id.to_owned(),
            item_id: item_id.to_owned(),
            version,
        },
    }
}

/// The running writer; [`Writer::stop`] writes what is queued and uninstalls it.
pub struct Writer {
    task: tokio::task::JoinHandle<()>,
}

/// Starts the writer into `store`; each write bumps `wake` so sinks ship without waiting.
pub fn install(store: Store, wake: watch::Sender<u64>) -> Writer {
    let (tx, mut rx) = mpsc::channel::<ApiRequest>(CHANNEL);
    *SENDER.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    let task = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(WRITE_BATCH);
        while rx.recv_many(&mut buf, WRITE_BATCH).await > 0 {
            let batch = std::mem::take(&mut buf);
            let store = store.clone();
            let written =
                tokio::task::spawn_blocking(move || store.audit_append(&batch, true, None)).await;
            match written {
                Ok(Ok(_)) => wake.send_modify(|n| *n = n.wrapping_add(1)),
                Ok(Err(e)) => tracing::error!(error = %e, "own audit events not written"),
                Err(e) => tracing::error!(error = %e, "own audit event writer failed"),
            }
        }
    });
    Writer { task }
}

impl Writer {
    /// Stops taking events, writes the queued ones and ends.
    pub async fn stop(self) {
        SENDER.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "own audit event writer failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_name_the_plugin_and_route_and_carry_no_value() {
        let e = OwnEvent {
            action: OwnAction::Deliver,
            plugin: "aws".into(),
            route: Some("prod".into()),
            target: OwnTarget::Item {
                vault_id: "v".into(),
                item_id: "i".into(),
                version: 3,
            },
        };
        let a = e.to_record();
        let b = e.to_record();
        assert!(a.request_id.starts_with("opsync-"));
        assert_eq!(a.request_id.len(), "opsync-".len() + 32);
        assert_ne!(a.request_id, b.request_id);
        assert_eq!(a.action.as_str(), "DELIVER");
        assert_eq!(a.result.as_str(), "SUCCESS");
        assert_eq!(a.actor.id, "plugin:aws");
        assert_eq!(a.actor.account, "prod");
        let r = a.resource.expect("a target");
        assert_eq!(r.item_version, Some(3));
        let denied = OwnEvent {
            action: OwnAction::Denied,
            plugin: "x".into(),
            route: None,
            target: OwnTarget::Host("https://evil.example:443".into()),
        }
        .to_record();
        assert_eq!(denied.result.as_str(), "DENY");
        assert_eq!(
            denied.resource.and_then(|r| r.item).map(|i| i.id),
            Some("https://evil.example:443".to_owned())
        );
    }
}
