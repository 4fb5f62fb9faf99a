//! Fakes of the SIEM intakes no real server of can run here (Splunk HEC, Elasticsearch `_bulk`),
//! in-process on 127.0.0.1 port 0, plus loading a built-in audit sink with a grant for exactly one
//! peer and making audit records. Reusable by any test: `HecFake::start`, `EsFake::start`, then
//! `events()`/`documents()`, `set_failure_mode(...)`, `stop()`.

#![allow(dead_code, unused_imports)]

pub mod es;
pub mod hec;

use std::net::SocketAddr;

use opsync::connect::model::ApiRequest;
use opsync::plugin::AuditRecord;
use opsync::plugin::{
    Grants, HttpPolicy, Limits, Plugin, PluginHost, PluginSource, PluginSpec, World,
};
use serde_json::json;

pub use es::{EsFailure, EsFake};
pub use hec::{HecFailure, HecFake};

#[path = "../fake_server/mod.rs"]
mod fake_server;
pub use fake_server::Server;

/// A built-in audit sink as the daemon loads it, with `grants`.
pub fn audit_sink(
    host: &PluginHost,
    builtin: &str,
    pairs: &[(&str, &str)],
    grants: Grants,
) -> Plugin {
    host.load(PluginSpec {
        name: format!("to-{builtin}"),
        source: PluginSource::Builtin(builtin.to_string()),
        world: Some(World::AuditSink),
        config: crate::plugin_support::config(pairs),
        limits: Limits::default(),
        grants,
    })
    .unwrap_or_else(|e| panic!("the built-in {builtin} audit sink loads: {e}"))
}

/// Grants reaching exactly `url` (`http://host:port`) over wasi:http.
pub fn http_grant(url: &str) -> Grants {
    Grants {
        http: HttpPolicy {
            allowed: vec![url.parse().expect("allow-list rule")],
            tls: None,
        },
        ..Grants::default()
    }
}

/// `n` audit records `req-<first>..`, alternating READ/UPDATE and SUCCESS/DENY, oldest first.
pub fn records(first: usize, n: usize) -> Vec<AuditRecord> {
    (first..first + n).map(|i| record(i).into()).collect()
}

/// Record number `i`.
pub fn record(i: usize) -> ApiRequest {
    serde_json::from_value(json!({
        "requestId": format!("req-{i:05}"),
        "timestamp": format!("2024-05-01T12:{:02}:{:02}.123Z", (i / 60) % 60, i % 60),
        "action": if i.is_multiple_of(2) { "READ" } else { "UPDATE" },
        "result": if i.is_multiple_of(3) { "DENY" } else { "SUCCESS" },
        "actor": {
            "id": "0d3ef7c4-7a7a-4b4b-9c9c-000000000001",
            "account": "ACCOUNTUUID",
            "jti": "token-jti-1",
            "userAgent": "opsync-test/1",
            "requestIp": "192.0.2.7",
        },
        "resource": {
            "type": "ITEM",
            "vault": {"id": "ftz4ftz4ftz4ftz4ftz4ftz4ft"},
            "item": {"id": "h2x6h2x6h2x6h2x6h2x6h2x6h2"},
            "itemVersion": i,
        },
    }))
    .expect("an activity record")
}

/// One of the daemon's own records (an action Connect never sends).
pub fn daemon_record(id: &str, action: &str) -> AuditRecord {
    serde_json::from_value::<ApiRequest>(json!({
        "requestId": id,
        "timestamp": "2024-05-01T13:00:00Z",
        "action": action,
        "result": "SUCCESS",
        "actor": {"id": "opsync"},
    }))
    .expect("a daemon record")
    .into()
}
