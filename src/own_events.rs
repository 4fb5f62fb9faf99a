//! opsync's own audit events (deliveries, dead letters, denied plugin requests, rotations),
//! written to the outbox beside Connect's records and shipped as `audit-event`s with request id
//! `opsync-...`. Never a secret value: ids, names and versions.
//!
//! Components that emit them are handed an [`AuditEvents`] handle, so a signature says who
//! emits. Events are written when they happen while the handle is [`AuditEvents::install`]ed
//! (the audit export of `run` and `once`); otherwise they are not recorded. A delivery or dead
//! letter is written in the same transaction as the ledger row it reports
//! ([`AuditEvents::pending`]), so a process killed at any point keeps both or neither.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::Utc;
use rand::Rng as _;
use tokio::sync::watch;

use crate::connect::model::{
    ActivityAction, ActivityActor, ActivityResource, ActivityResult, ApiRequest, IdRef,
    ResourceType,
};
use crate::store::Store;

use crate::telemetry::names::{OWN_EVENTS_DROPPED_TOTAL, OWN_EVENTS_TOTAL};

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

/// Where events go while the export runs.
struct Outbox {
    store: Store,
    wake: watch::Sender<u64>,
}

impl Outbox {
    /// An event is in the outbox: counted, and the sinks woken.
    fn written(&self, action: OwnAction) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        metrics::counter!(OWN_EVENTS_TOTAL, "action" => action.as_str()).increment(1);
    }
}

/// The handle every emitter holds: cheap to clone, all clones share one outbox, which records
/// only while installed.
#[derive(Clone, Default)]
pub struct AuditEvents {
    outbox: Arc<Mutex<Option<Outbox>>>,
}

impl std::fmt::Debug for AuditEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditEvents")
            .field("recording", &self.lock().is_some())
            .finish()
    }
}

impl AuditEvents {
    /// A handle that records nothing until installed.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Outbox>> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records events into `store` from now on; each write bumps `wake` so sinks ship without
    /// waiting. Recording stops when the returned [`Writer`] is dropped.
    pub fn install(&self, store: Store, wake: watch::Sender<u64>) -> Writer {
        *self.lock() = Some(Outbox { store, wake });
        Writer {
            events: self.clone(),
        }
    }

    /// Records an event now (one small write to the state database); not recorded while not
    /// installed. A failed write is logged and counted, never passed to the caller.
    pub fn record(&self, event: OwnEvent) {
        let guard = self.lock();
        let Some(outbox) = guard.as_ref() else {
            return;
        };
        match outbox.store.audit_append(&[event.to_record()], true, None) {
            Ok(_) => outbox.written(event.action),
            Err(e) => not_written(event.action, &e.to_string()),
        }
    }

    /// The record to write in the same transaction as the state change it reports, while
    /// installed; after the commit, call [`AuditEvents::written`].
    pub fn pending(&self, event: &OwnEvent) -> Option<ApiRequest> {
        self.lock().as_ref().map(|_| event.to_record())
    }

    /// A [`AuditEvents::pending`] record was committed: counts it and wakes the sinks.
    pub fn written(&self, action: OwnAction) {
        if let Some(outbox) = self.lock().as_ref() {
            outbox.written(action);
        }
    }

    /// A rotation by `plugin` made `version` of the item current.
    pub fn rotated(&self, plugin: &str, vault_id: &str, item_id: &str, version: u64) {
        self.record(OwnEvent {
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
    pub fn denied(&self, plugin: &str, target: &str) {
        self.record(OwnEvent {
            action: OwnAction::Denied,
            plugin: plugin.to_owned(),
            route: None,
            target: OwnTarget::Host(target.to_owned()),
        });
    }
}

/// An event could not be written: logged (no value is in it) and counted.
fn not_written(action: OwnAction, error: &str) {
    tracing::error!(
        action = action.as_str(),
        error,
        "an own audit event was not written"
    );
    metrics::counter!(OWN_EVENTS_DROPPED_TOTAL, "action" => action.as_str()).increment(1);
}

/// An event about an item version (a delivery or a dead letter), for [`AuditEvents::record`]
/// or [`AuditEvents::pending`].
pub fn item_event(
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

/// Own events are recorded while this lives; [`Writer::stop`] ends that.
pub struct Writer {
    events: AuditEvents,
}

impl Writer {
    /// Stops recording own events (every one recorded is already written); dropping it does
    /// the same.
    pub fn stop(self) {}
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.events.lock().take();
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
