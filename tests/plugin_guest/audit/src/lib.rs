//! Test audit sink: accepts batches, or refuses one holding a denied request when config says so.

wit_bindgen::generate!({
    world: "audit-sink",
    path: "../../../wit/0.1.0",
    generate_all,
});

use opsync::plugin::config;
use opsync::plugin::log::{Level, log};

struct TestSink;

impl Guest for TestSink {
    fn validate() -> Result<(), PluginError> {
        config::get_secret("token")
            .map(drop)
            .ok_or_else(|| PluginError::Misconfigured("token is required".into()))
    }

    fn ingest(batch: Vec<AuditEvent>) -> Result<(), PluginError> {
        let fail_on_deny = config::get("fail-on-deny").as_deref() == Some("yes");
        for event in &batch {
            let target = event
                .target
                .as_ref()
                .map(|t| format!("{} {:?}", t.kind, t.item_version))
                .unwrap_or_default();
            log(
                Level::Info,
                &format!(
                    "{} {} {} {target}",
                    event.request_id, event.action, event.outcome
                ),
            );
            if fail_on_deny && event.outcome == "DENY" {
                return Err(PluginError::Retryable(format!(
                    "refusing denied request {}",
                    event.request_id
                )));
            }
        }
        Ok(())
    }
}

export!(TestSink);
