//! The rotator and audit-sink worlds end to end: the host's side of each export, secrets made by
//! a plugin coming back to the host, and calls refused for a world that does not export them.

mod plugin_support;

use opsync::connect::model::ApiRequest;
use opsync::plugin::{
    AuditRecord, FailureKind, Grants, NewValue, PluginError, Rotation, RotationStep, VaultRef,
    World,
};
use plugin_support::{audit_wasm, event, host, item, rotator_wasm, secret, spec_for, tight_limits};

fn rotation(pending: Vec<NewValue>) -> Rotation {
    let item = item("db");
    Rotation {
        idempotency_key: "rotation-1".into(),
        vault: VaultRef {
            id: item.vault.id.clone(),
            name: "Prod".into(),
        },
        item,
        pending,
    }
}

#[tokio::test]
async fn a_rotator_runs_its_four_steps_and_hands_back_the_values_it_made() {
    let host = host();
    let rotator = host
        .load(spec_for(
            rotator_wasm(),
            "rotator",
            &[("make", "yes")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    assert_eq!(rotator.world(), World::Rotator);
    rotator.validate().await.expect("valid");

    let made = rotator
        .rotate(RotationStep::Create, &rotation(Vec::new()))
        .await
        .expect("create");
    assert_eq!(
        made,
        vec![NewValue {
            field: "password".into(),
            value: secret("made-by-the-plugin"),
        }]
    );
    let pending = rotation(made);
    for step in [RotationStep::Set, RotationStep::Test, RotationStep::Finish] {
        let out = rotator.rotate(step, &pending).await.expect("step");
        assert!(out.is_empty(), "{step:?}");
    }

    // A step the plugin refuses comes back as its own error, named.
    let err = rotator
        .rotate(RotationStep::Set, &rotation(Vec::new()))
        .await
        .expect_err("nothing pending");
    assert_eq!(err.kind(), FailureKind::Permanent);
    assert!(err.to_string().contains("plugin `rotator`"), "{err}");

    // Calls of another world are refused before any instance is made.
    let err = rotator
        .deliver(&event(item("db"), opsync::plugin::ChangeKind::Updated))
        .await
        .expect_err("not a destination");
    assert!(matches!(err, PluginError::WrongWorld { .. }), "{err}");
}

#[tokio::test]
async fn a_rotator_that_makes_nothing_leaves_generation_to_the_host() {
    let rotator = host()
        .load(spec_for(
            rotator_wasm(),
            "rotator",
            &[],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    let made = rotator
        .rotate(RotationStep::Create, &rotation(Vec::new()))
        .await
        .expect("create");
    assert!(made.is_empty());
}

fn audit_record(request_id: &str, result: &str) -> AuditRecord {
    serde_json::from_value::<ApiRequest>(serde_json::json!({
        "requestId": request_id,
        "timestamp": "2026-11-26T05:00:00Z",
        "action": "READ",
        "result": result,
        "actor": {
            "id": "actor", "account": "acct", "jti": "jti",
            "userAgent": "ua", "requestIp": "127.0.0.1"
        },
        "resource": {
            "type": "ITEM",
            "vault": { "id": "vlt0000000000000000000000a" },
            "item": { "id": "itm0000000000000000000000a" },
            "itemVersion": 3
        }
    }))
    .expect("an activity record")
    .into()
}

#[tokio::test]
async fn an_audit_sink_takes_batches_and_its_refusals_are_named() {
    let host = host();
    let sink = host
        .load(spec_for(
            audit_wasm(),
            "siem",
            &[("token", "hec-token"), ("fail-on-deny", "yes")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    assert_eq!(sink.world(), World::AuditSink);
    sink.validate().await.expect("valid");
    sink.ingest(&[audit_record("r1", "SUCCESS"), audit_record("r2", "SUCCESS")])
        .await
        .expect("accepted");
    let err = sink
        .ingest(&[audit_record("r3", "SUCCESS"), audit_record("r4", "DENY")])
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), FailureKind::Retryable);
    assert!(err.to_string().contains("plugin `siem`"), "{err}");
    assert!(err.to_string().contains("r4"), "{err}");

    let unconfigured = host
        .load(spec_for(
            audit_wasm(),
            "bare",
            &[],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    let err = unconfigured.validate().await.expect_err("token missing");
    assert_eq!(err.kind(), FailureKind::Misconfigured);
}
