//! The built-in `webhook-audit` sink: POSTs each audit batch as one JSON document to `url`,
//! signed exactly like the `webhook` destination (Standard Webhooks: `webhook-id`,
//! `webhook-timestamp`, `webhook-signature`; both sign with `opsync-webhook-sign`).
//! A 2xx is the acknowledgement.
//!
//! Config: `url` (required; grant its host:port), `secret` (required, `whsec_<base64>`, usually an
//! `op://` reference), `format` (`raw` default, `ocsf`, `ecs`), `max-body-bytes` (default 900000:
//! a larger batch goes as several POSTs, each with its own id; the sandbox caps a body at 1 MiB).
//! The body is
//! `{"type": "audit.batch", "timestamp", "data": {"format", "count", "events": [...]}}`;
//! `webhook-id` is `audit_` + a hash of the batch's request ids, the same on every retry of the
//! batch, so receivers drop replays.

use opsync_audit_kit::clock::Instant;
use opsync_audit_kit::format::{Doc, Format};
use opsync_audit_kit::http::{self, Endpoint, Request};
use opsync_audit_kit::settings::{self, check_keys, required};
use opsync_audit_kit::split;
use opsync_audit_kit::{AuditEvent, Guest, PluginError, permanent};
use opsync_webhook_sign::SigningKey;
use serde_json::json;
use sha2::{Digest, Sha256};

const KNOWN_KEYS: &[&str] = &["url", "secret", "format", "max-body-bytes"];

struct Settings {
    url: Endpoint,
    key: SigningKey,
    format: Format,
    max_body_bytes: u32,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let url = Endpoint::parse("url", &required("url")?)?;
        Ok(Self {
            url,
            key: SigningKey::from_config("secret")?,
            format: Format::load(Format::Raw)?,
            max_body_bytes: settings::number("max-body-bytes", 4_096..=100_000_000, 900_000)?,
        })
    }
}

/// `audit_` + 32 hex digits of SHA-256 over the batch's request ids: stable across retries.
pub fn batch_id(batch: &[AuditEvent]) -> String {
    let mut hash = Sha256::new();
    for event in batch {
        hash.update(event.request_id.as_bytes());
        hash.update(b"\n");
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("audit_{hex}")
}

struct WebhookAudit;

impl Guest for WebhookAudit {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(drop)
    }

    fn ingest(batch: Vec<AuditEvent>) -> Result<(), PluginError> {
        if batch.is_empty() {
            return Ok(());
        }
        let settings = Settings::load()?;
        let events = batch
            .iter()
            .map(|e| settings.format.render(e))
            .collect::<Result<Vec<_>, _>>()?;
        let sizes = events
            .iter()
            .map(|doc| serde_json::to_vec(doc).map(|v| v.len() + 1))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| permanent(format!("cannot render the payload: {e}")))?;
        // The envelope around the events takes well under 1 KiB.
        let budget = (settings.max_body_bytes as usize).saturating_sub(1024);
        for range in split::by_size(&sizes, budget) {
            post(&settings, &batch[range.clone()], &events[range])?;
        }
        Ok(())
    }
}

/// One signed POST of `events` (the formatted `batch`).
fn post(settings: &Settings, batch: &[AuditEvent], events: &[Doc<'_>]) -> Result<(), PluginError> {
    let at = Instant::now();
    let id = batch_id(batch);
    let body = serde_json::to_vec(&json!({
        "type": "audit.batch",
        "timestamp": at.rfc3339(),
        "data": {
            "format": settings.format.as_str(),
            "count": events.len(),
            "events": events,
        },
    }))
    .map_err(|e| permanent(format!("cannot render the payload: {e}")))?;
    let signature = settings.key.sign(&id, at.unix(), &body);
    let response = http::send(Request {
        method: "POST",
        endpoint: &settings.url,
        path: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "opsync-webhook-audit".into()),
            ("webhook-id".into(), id),
            ("webhook-timestamp".into(), at.unix().to_string()),
            ("webhook-signature".into(), signature),
        ],
        body: Some(body),
    })?;
    if !response.is_success() {
        return Err(response.error(
            &format!(
                "webhook-audit POST {}{}",
                settings.url.origin(),
                settings.url.base_path
            ),
            "",
        ));
    }
    Ok(())
}

opsync_audit_kit::export_audit_sink!(WebhookAudit);

#[cfg(test)]
mod tests {
    use super::*;
    use opsync_audit_kit::AuditActor;

    fn event(id: &str) -> AuditEvent {
        AuditEvent {
            request_id: id.into(),
            timestamp: "2024-05-01T12:00:00Z".into(),
            action: "READ".into(),
            outcome: "SUCCESS".into(),
            actor: AuditActor {
                id: "a".into(),
                account: String::new(),
                jti: String::new(),
                user_agent: String::new(),
                request_ip: String::new(),
            },
            target: None,
        }
    }

    #[test]
    fn batch_ids_are_stable_and_differ_by_content() {
        let a = batch_id(&[event("r1"), event("r2")]);
        assert_eq!(a, batch_id(&[event("r1"), event("r2")]));
        assert_ne!(a, batch_id(&[event("r1")]));
        assert_eq!(a.len(), "audit_".len() + 32);
    }
}
