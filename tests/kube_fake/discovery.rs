//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/apps`, `/apis/apps/v1`.
//!
//! Served in the legacy (unaggregated) form only, which is what clients fall back to when the
//! answer to their aggregated-discovery `Accept` is plain `application/json`.

use serde_json::{Value, json};

/// The Kubernetes version the fake claims to be.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0+opsync.fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address},
        ],
    })
}

/// The verbs the API server lists for Secrets and workloads (`watch` and `deletecollection`
/// included, though the fake answers them 405).
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn core_v1() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [{
            "name": "secrets",
            "singularName": "secret",
            "namespaced": true,
            "kind": "Secret",
            "verbs": VERBS,
            "storageVersionHash": "S6u1pOWzb84=",
        }],
    })
}

fn apps_group() -> Value {
    json!({
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    })
}

pub fn api_groups() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [apps_group()]})
}

pub fn apps() -> Value {
    let mut group = apps_group();
    group["kind"] = json!("APIGroup");
    group["apiVersion"] = json!("v1");
    group
}

pub fn apps_v1() -> Value {
    let resource = |name: &str, singular: &str, kind: &str, short: &str| {
        json!({
            "name": name,
            "singularName": singular,
            "namespaced": true,
            "kind": kind,
            "verbs": VERBS,
            "shortNames": [short],
            "categories": ["all"],
        })
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            resource("daemonsets", "daemonset", "DaemonSet", "ds"),
            resource("deployments", "deployment", "Deployment", "deploy"),
            resource("statefulsets", "statefulset", "StatefulSet", "sts"),
        ],
    })
}
