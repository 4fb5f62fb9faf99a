//! The built-in `kubernetes-secret` destination: writes one Kubernetes Secret per item into one
//! namespace by server-side apply (`PATCH ...?fieldManager=opsync`, `application/apply-patch+yaml`),
//! always as `data` (standard base64 of the bytes, never `stringData`, so what is stored is exactly
//! what was sent), marks what it manages, skips versions already there, and can restart the
//! workloads that read the Secrets once a batch changed them.
//!
//! Config: `server` (default `https://kubernetes.default.svc`; grant its host:port, and the
//! cluster CA on the host's side), `token` (a secret, usually an `op://` reference) or
//! `token-file` (a guest path, read on every call so a rotated projected token is picked up;
//! default when neither is set: `/var/run/secrets/kubernetes.io/serviceaccount/token`, whose
//! directory must be granted read-only), `namespace` (required, a DNS-1123 label), `name`
//! (template of the Secret's name; default `{{title | slug}}`; its literal text may hold only
//! `a-z 0-9 - .`, and a rendered name that is not a DNS-1123 subdomain fails the item), `type`
//! (`Opaque`, `kubernetes.io/dockerconfigjson`, `kubernetes.io/tls`), `fields` (Opaque: field ids
//! or labels, each `FIELD` (key: the field's label) or `FIELD=KEY`; default every field with a
//! value, keyed by its label with each run of characters a key cannot hold as one `_`), `registry` (required for dockerconfigjson), `username-field` and
//! `password-field` (dockerconfigjson; default `username`, `password`), `cert-field` and
//! `key-field` (tls: fields whose PEM text is written as `tls.crt`, `tls.key`), or `cert-file` and
//! `key-file` (tls: the item's files whose certificate blocks and private key are written;
//! default: the fields `certificate` and `private key`, else the blocks in all the item's
//! files, whose content the route sends with `files = true`), `adopt`
//! (default `false`: a Secret without opsync's label is never written), `force` (default
//! `false`: a field another manager owns is a conflict, reported; `true` applies with
//! `force=true`), `on-delete` (`delete`, the default: delete the Secret, only when it carries
//! opsync's label for this item, with the `resourceVersion` just read as a precondition; `keep`:
//! leave it, annotated `opsync.io/orphaned: "true"` by a merge patch), `restart`
//! (comma-separated `deployment/NAME`, `statefulset/NAME`, `daemonset/NAME` in the namespace:
//! after a batch that changed a Secret's data or deleted one, each is restarted once the way
//! `kubectl rollout restart` does; if that fails, the batch's events that changed something fail
//! with its error, and their retry restarts again: a retry or replay of the event that last
//! wrote a Secret restarts them even though nothing is written, since whether the restart after
//! that write ran is unknown).
//!
//! Secrets are always named by `name`, never by the route's key (a Kubernetes name cannot hold
//! `/` or spaces); a deletion of a renamed item's old key deletes nothing when `name` does not
//! use the title. Data above the API server's 1 MiB (decoded) is refused before anything is sent.
//!
//! Every Secret written carries the label `app.kubernetes.io/managed-by: opsync` and the
//! annotations `opsync.io/item-id`, `opsync.io/vault-id`, `opsync.io/item-version` and
//! `opsync.io/idempotency-key`. Its fingerprint (receipts, `read-back`) is the kit's digest of
//! the canonical JSON of `{"type": TYPE, "data": DATA}`, base64 values as stored: as the apply
//! answered, and as a read answers, so an edit or a deletion by someone else shows as drift.
//!
//! RBAC: `get`, `create`, `patch`, `delete` on `secrets` in the namespace; `patch` on the
//! `apps` workloads of `restart`. 401 and 403 are `misconfigured` errors naming the method, the
//! path and the API's message: the route pauses and retries, so a rotated token or a fixed Role
//! lets it go on.

mod api;
mod names;
mod ownership;
mod render;
mod restart;
mod settings;
mod tls;

use api::Api;
use names::{SUBDOMAIN_RULE, is_dns_subdomain};
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::{
    ChangeKind, Destination, Found, ItemEvent, ItemRef, PluginError, Receipt, deliver_each,
    fingerprint, permanent, receipt, receipt_with_fingerprint,
};
use ownership::{
    MANAGED_BY, OPSYNC, ORPHANED, Owner, apply_body, check_owner, holds, owner, written_by,
};
use restart::restart_workloads;
use serde_json::{Map, Value, json};
use settings::{DEFAULT_NAME, OnDelete, Settings, Token, read_token_file};

/// `item `TITLE` (ID)`, for messages.
pub(crate) fn describe(event: &ItemEvent) -> String {
    format!("item `{}` ({})", event.item.title, event.item.id)
}

/// The fingerprint of a Secret's type and data, on write and on read-back alike.
fn fingerprint_of(secret_type: &str, data: &Map<String, Value>) -> String {
    fingerprint::digest(&render::fingerprint_input(secret_type, data))
}

/// What one event did; `restart` says why the workloads must restart for it (how the Secret
/// changed, for the message should the restart fail), none when they need not.
struct Outcome {
    receipt: Receipt,
    restart: Option<&'static str>,
}

impl Outcome {
    fn quiet(receipt: Receipt) -> Self {
        Self {
            receipt,
            restart: None,
        }
    }
}

/// Config and client of one call (the token read once).
struct Context {
    settings: Settings,
    api: Api,
}

fn setup() -> Result<Context, PluginError> {
    let settings = Settings::load()?;
    let api = Api {
        server: settings.server.clone(),
        token: settings.token()?,
        namespace: settings.namespace.clone(),
    };
    Ok(Context { settings, api })
}

fn write(ctx: &Context, name: &str, event: &ItemEvent) -> Result<Outcome, PluginError> {
    let settings = &ctx.settings;
    let location = ctx.api.location(name);
    let values = settings.shape.values(event)?;
    render::check_size(&describe(event), &values)?;
    let data = render::encode(&values);
    let secret_type = settings.shape.type_name();
    let existing = ctx.api.get(name)?;
    if let Some(found) = &existing {
        check_owner(settings, &location, found, event)?;
        if found.secret_type != secret_type {
            return Err(permanent(format!(
                "Secret {location} has type {}, and `type` is {secret_type}: a Secret's type \
                 cannot change; delete the Secret to let opsync write it again",
                found.secret_type
            )));
        }
        if holds(found, event, secret_type, &data) {
            // The fingerprint of what is there, which is what this version wrote.
            return Ok(Outcome {
                receipt: receipt_with_fingerprint(
                    location,
                    found.resource_version.clone(),
                    true,
                    fingerprint_of(secret_type, &data),
                ),
                restart: written_by(found, event).then_some("already held this version"),
            });
        }
    }
    let body = apply_body(&settings.namespace, name, event, secret_type, &data);
    let mut stored = ctx.api.apply(name, &body, settings.force)?;
    // The annotation came from a merge patch (an update by opsync's field manager), which an
    // apply does not own and so does not remove.
    if existing
        .as_ref()
        .is_some_and(|s| s.annotation(ORPHANED).is_some())
    {
        let patch = json!({ "metadata": { "annotations": { ORPHANED: null } } });
        stored = ctx.api.merge_patch(name, &patch)?;
    }
    let changed = existing.as_ref().is_none_or(|found| {
        found.data != stored.data
            || found.secret_type != stored.secret_type
            || written_by(found, event)
    });
    Ok(Outcome {
        receipt: receipt_with_fingerprint(
            location,
            stored.resource_version,
            false,
            fingerprint_of(&stored.secret_type, &stored.data),
        ),
        restart: changed.then_some("was written"),
    })
}

fn delete(ctx: &Context, name: &str, event: &ItemEvent) -> Result<Outcome, PluginError> {
    let location = ctx.api.location(name);
    let Some(found) = ctx.api.get(name)? else {
        return Ok(Outcome::quiet(receipt(location, None, true)));
    };
    let keep = ctx.settings.on_delete == OnDelete::Keep;
    match owner(&found, &event.item.id) {
        Owner::Ours => {}
        _ if keep => {
            log(
                Level::Info,
                &format!(
                    "left Secret {location} as it is: it is not opsync's Secret for {}",
                    describe(event)
                ),
            );
            return Ok(Outcome::quiet(receipt(
                location,
                found.resource_version,
                true,
            )));
        }
        Owner::Unmanaged => {
            return Err(permanent(format!(
                "not deleting Secret {location}: it is not managed by opsync (no label \
                 {MANAGED_BY}={OPSYNC})"
            )));
        }
        Owner::Other(id) => {
            return Err(permanent(format!(
                "not deleting Secret {location}: it is managed by opsync for item {id}, not for \
                 {}",
                describe(event)
            )));
        }
    }
    if keep {
        if found.annotation(ORPHANED).is_some() {
            return Ok(Outcome::quiet(receipt(
                location,
                found.resource_version,
                true,
            )));
        }
        let patch = json!({ "metadata": { "annotations": { ORPHANED: "true" } } });
        let stored = ctx.api.merge_patch(name, &patch)?;
        log(
            Level::Info,
            &format!("kept Secret {location} (on-delete is keep), annotated {ORPHANED}"),
        );
        return Ok(Outcome::quiet(receipt(
            location,
            stored.resource_version,
            false,
        )));
    }
    let deleted = ctx.api.delete(name, found.resource_version.as_deref())?;
    Ok(Outcome {
        receipt: receipt(location, found.resource_version, !deleted),
        restart: deleted.then_some("was deleted"),
    })
}

fn deliver(ctx: &Context, event: ItemEvent) -> Result<Outcome, PluginError> {
    let Some(name) = ctx.settings.name.name(&event)? else {
        log(
            Level::Info,
            &format!(
                "not deleting anything for item {}: its Secret's name does not follow its title",
                event.item.id
            ),
        );
        return Ok(Outcome::quiet(receipt(String::new(), None, true)));
    };
    if !is_dns_subdomain(&name) {
        // No Secret can have that name: nothing to delete.
        if event.kind == ChangeKind::Deleted {
            return Ok(Outcome::quiet(receipt(ctx.api.location(&name), None, true)));
        }
        return Err(permanent(format!(
            "{}: the Secret name `{name}` rendered from `name` (`{}`) is not a DNS-1123 \
             subdomain ({SUBDOMAIN_RULE}); change `name` (`{DEFAULT_NAME}` makes one from the \
             title)",
            describe(&event),
            ctx.settings.name_text
        )));
    }
    match event.kind {
        ChangeKind::Deleted => delete(ctx, &name, &event),
        ChangeKind::Created | ChangeKind::Updated | ChangeKind::Rotated | ChangeKind::Repaired => {
            write(ctx, &name, &event)
        }
    }
}

struct KubernetesSecret;

impl Destination for KubernetesSecret {
    /// Checks the config, and that the token file (when used) can be read.
    fn validate() -> Result<(), PluginError> {
        let settings = Settings::load()?;
        if let Token::File(path) = &settings.token {
            read_token_file(path)?;
        }
        Ok(())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        let mut results = Self::deliver_batch(vec![event]);
        results
            .pop()
            .unwrap_or_else(|| Err(permanent("the event was not delivered")))
    }

    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        if events.is_empty() {
            return Vec::new();
        }
        let context = setup();
        let mut restarts = Vec::with_capacity(events.len());
        let mut results = deliver_each(
            events,
            || context.as_ref().map_err(Clone::clone),
            |ctx, event| match deliver(ctx, event) {
                Ok(outcome) => {
                    restarts.push(outcome.restart);
                    Ok(outcome.receipt)
                }
                Err(error) => {
                    restarts.push(None);
                    Err(error)
                }
            },
        );
        if let Ok(ctx) = &context {
            restart_workloads(ctx, &mut results, &restarts);
        }
        results
    }

    /// The fingerprint of the Secret's type and data; absent when there is no Secret of the
    /// item's name.
    fn read_back(item: ItemRef) -> Result<Found, PluginError> {
        let ctx = setup()?;
        let Some(name) = ctx.settings.name.name(&item)? else {
            return Ok(Found::Absent);
        };
        if !is_dns_subdomain(&name) {
            return Ok(Found::Absent);
        }
        Ok(match ctx.api.get(&name)? {
            Some(stored) => Found::Present(fingerprint_of(&stored.secret_type, &stored.data)),
            None => Found::Absent,
        })
    }
}

opsync_destination_kit::export_destination!(KubernetesSecret);
