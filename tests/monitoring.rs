//! The monitoring shipped under deploy/: the Prometheus alert rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`, recorded series); the rules and the Grafana
//! dashboard query only metric names opsync defines, so a rename cannot break them silently.

mod dashboard_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dashboard_support::metric_names;
use opsync::telemetry::names;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(deploy("prometheus"))
        .output()
        .expect("promtool runs (scripts/setup-system.sh installs Debian's prometheus)")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn unknown(used: &BTreeSet<String>) -> Vec<&String> {
    used.iter()
        .filter(|name| !names::ALL.contains(&name.as_str()))
        .collect()
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let check = promtool(&["check", "rules", "opsync-alerts.yaml"]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("SUCCESS: 10 rules found"),
        "{}",
        text(&check)
    );
    let tests = promtool(&["test", "rules", "opsync-alerts.test.yaml"]);
    assert!(tests.status.success(), "{}", text(&tests));
    assert!(text(&tests).contains("SUCCESS"), "{}", text(&tests));
}

#[test]
fn a_rule_that_no_longer_fires_fails_its_unit_test() {
    // The unit tests can fail: the same tests against a rule with a raised threshold.
    let dir = tempfile::tempdir().expect("tmp");
    let rules = std::fs::read_to_string(deploy("prometheus/opsync-alerts.yaml")).expect("rules");
    let raised = rules.replace(
        "opsync_route_lag_seconds > 900",
        "opsync_route_lag_seconds > 5000",
    );
    assert_ne!(rules, raised);
    std::fs::write(dir.path().join("opsync-alerts.yaml"), raised).expect("write");
    std::fs::copy(
        deploy("prometheus/opsync-alerts.test.yaml"),
        dir.path().join("opsync-alerts.test.yaml"),
    )
    .expect("copy");
    let out = Command::new("promtool")
        .args(["test", "rules", "opsync-alerts.test.yaml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool runs");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("OpsyncRouteLagging"), "{}", text(&out));
}

#[test]
fn alert_rules_query_only_metrics_opsync_defines() {
    let rules = std::fs::read_to_string(deploy("prometheus/opsync-alerts.yaml")).expect("rules");
    let used = metric_names(&rules);
    assert!(used.len() >= 10, "{used:?}");
    assert!(
        unknown(&used).is_empty(),
        "unknown metrics: {:?}",
        unknown(&used)
    );
}

#[test]
fn the_dashboard_queries_only_metrics_opsync_defines() {
    let text = std::fs::read_to_string(deploy("grafana/opsync.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("id")),
            "duplicate id"
        );
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{}: {expr}", panel["title"]);
            used.extend(names);
        }
    }
    assert!(
        unknown(&used).is_empty(),
        "unknown metrics: {:?}",
        unknown(&used)
    );
    // What the dashboard is for: each of these is on it.
    for needed in [
        names::POLLS_TOTAL,
        names::CHANGES_DETECTED_TOTAL,
        names::DELIVERIES_TOTAL,
        names::ROUTE_LAG_SECONDS,
        names::RETRIES_TOTAL,
        names::DEAD_LETTERS,
        names::PLUGIN_CALLS_TOTAL,
        names::ROTATIONS_TOTAL,
        names::AUDIT_SHIPPED_TOTAL,
        names::AUDIT_LAG_SECONDS,
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
}

#[test]
fn the_name_scanner_folds_histograms_and_skips_longer_words() {
    let found = metric_names(
        "histogram_quantile(0.9, rate(opsync_poll_duration_seconds_bucket[5m])) + x_opsync_y",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["opsync_poll_duration_seconds".to_owned()]
    );
}
