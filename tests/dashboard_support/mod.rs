//! Shared by the monitoring and status-page suites: the `opsync_*` metric names that the Grafana
//! dashboard's queries use.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

/// The dashboard's file.
pub fn dashboard_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/opsync.json")
}

/// Every metric name the dashboard's panels query.
pub fn dashboard_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(dashboard_path()).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            used.extend(metric_names(target["expr"].as_str().unwrap_or_default()));
        }
    }
    used
}

/// The `opsync_*` metric names a query text uses, histogram series folded to their metric.
pub fn metric_names(query: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = query.as_bytes();
    let mut i = 0;
    while let Some(at) = query[i..].find("opsync_") {
        let start = i + at;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        // A metric name starts a word (not `foo_opsync_x`).
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            let name = &query[start..end];
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            found.insert(name.to_owned());
        }
        i = end;
    }
    found
}
