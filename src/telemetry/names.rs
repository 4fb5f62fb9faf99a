//! Every metric opsync exports: its name, its labels and its help text, in one place.
//!
//! Labels never carry a secret, an item title or a field value: only route, plugin and vault
//! names from config, endpoint templates, and small enums (outcome, kind, status).

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

// Replicas (a PostgreSQL state).
/// Gauge: 1 while this replica leads (polls, tails the audit log, delivers, rotates), else 0.
pub const LEADER: &str = "opsync_leader";
/// Gauge: the epoch of the leader lease as this replica last saw it.
pub const LEADER_EPOCH: &str = "opsync_leader_epoch";
/// Counter: times this replica started leading.
pub const LEADERSHIP_TAKEN_TOTAL: &str = "opsync_leadership_taken_total";
/// Gauge: ledger rows this replica holds claimed for delivery, by route.
pub const DELIVERY_CLAIMS: &str = "opsync_delivery_claims";

// Detection.
/// Histogram: how long one poll of Connect took (`full`: `true` for a reconciliation).
pub const POLL_DURATION_SECONDS: &str = "opsync_poll_duration_seconds";
/// Counter: polls by `result` (`ok`, `error`).
pub const POLLS_TOTAL: &str = "opsync_polls_total";
/// Counter: item changes detected, by `kind` (`created`, `updated`, `deleted`).
pub const CHANGES_DETECTED_TOTAL: &str = "opsync_changes_detected_total";
/// Gauge: routes held back by the mass-deletion guard (`route`).
pub const ROUTE_HELD: &str = "opsync_route_held";
/// Gauge: seconds since the oldest change still pending for a route was detected, by `route`
/// (0 when nothing is pending).
pub const ROUTE_LAG_SECONDS: &str = "opsync_route_lag_seconds";

// Delivery.
/// Counter: delivery attempts by `route`, `plugin` and `outcome` (`delivered`, `unchanged`,
/// `retry`, `dead_letter`, `misconfigured`).
pub const DELIVERIES_TOTAL: &str = "opsync_deliveries_total";
/// Histogram: from the change being detected to the destination confirming it, by `route`.
pub const DELIVERY_LATENCY_SECONDS: &str = "opsync_delivery_latency_seconds";
/// Counter: deliveries scheduled for another attempt, by `route`, `plugin` and `kind`.
pub const RETRIES_TOTAL: &str = "opsync_delivery_retries_total";
/// Counter: deliveries given up on and dead-lettered, by `route` and `plugin`.
pub const DEAD_LETTERS_TOTAL: &str = "opsync_dead_letters_total";
/// Counter: read-backs of what destinations hold, by `route`, `plugin` and `result` (`ok`,
/// `drift`, `error`, `unsupported`).
pub const DRIFT_CHECKS_TOTAL: &str = "opsync_drift_checks_total";
/// Counter: items found drifted at a destination, by `route`, `plugin` and `kind` (`changed`,
/// `missing`).
pub const DRIFT_DETECTED_TOTAL: &str = "opsync_drift_detected_total";
/// Counter: drifted items queued for delivery again (`on_drift = "repair"`), by `route` and
/// `plugin`.
pub const DRIFT_REPAIRS_TOTAL: &str = "opsync_drift_repairs_total";
/// Gauge: ledger entries waiting to be delivered, by `route`.
pub const PENDING: &str = "opsync_pending_deliveries";
/// Gauge: dead letters currently held, by `route`.
pub const DEAD_LETTERS: &str = "opsync_dead_letters";

// Connect.
/// Counter (written by the Connect client): requests by `endpoint`, `method` and `status`.
pub const CONNECT_REQUESTS_TOTAL: &str = "opsync_connect_requests_total";
/// Histogram (written by the Connect client): request duration by `endpoint`.
pub const CONNECT_REQUEST_DURATION_SECONDS: &str = "opsync_connect_request_duration_seconds";
/// Gauge: seconds until the Connect token expires (negative once expired; absent when the token
/// has no expiry).
pub const CONNECT_TOKEN_EXPIRY_SECONDS: &str = "opsync_connect_token_expiry_seconds";

// Plugins (written by the plugin host).
/// Counter: plugin calls by `plugin`, `call` and `result` (`ok`, `retryable`, `permanent`,
/// `misconfigured`, `timeout`, `cpu_limit`, `memory_limit`, `stack_overflow`, `log_flood`, `trap`).
pub const PLUGIN_CALLS_TOTAL: &str = "opsync_plugin_calls_total";
/// Histogram: plugin call duration by `plugin` and `call`.
pub const PLUGIN_CALL_DURATION_SECONDS: &str = "opsync_plugin_call_duration_seconds";
/// Counter: outgoing HTTP requests a plugin made, by `plugin`.
pub const PLUGIN_HTTP_REQUESTS_TOTAL: &str = "opsync_plugin_http_requests_total";
/// Counter: outgoing HTTP requests refused by a plugin's allow-list, by `plugin`.
pub const PLUGIN_HTTP_DENIED_TOTAL: &str = "opsync_plugin_http_denied_total";
/// Counter: secret reveals by `plugin` and `field`.
pub const PLUGIN_SECRET_REVEALS_TOTAL: &str = "opsync_plugin_secret_reveals_total";
/// Counter: plugin log lines dropped over budget, by `plugin`.
pub const PLUGIN_LOG_DROPPED_TOTAL: &str = "opsync_plugin_log_dropped_total";
/// Counter: bytes a plugin wrote to stdout or stderr past the kept 16 KiB, by `plugin` and
/// `stream`.
pub const PLUGIN_OUTPUT_DROPPED_BYTES_TOTAL: &str = "opsync_plugin_output_dropped_bytes_total";
/// Counter: flushes of plugins' granted directories before recording, by plugin and result.
pub const PLUGIN_DIR_FLUSHES_TOTAL: &str = "opsync_plugin_dir_flushes_total";
/// Histogram: duration of those flushes, by plugin.
pub const PLUGIN_DIR_FLUSH_DURATION_SECONDS: &str = "opsync_plugin_dir_flush_duration_seconds";

// Audit export (src/audit).
/// Counter: reads of `/v1/activity` by `result` (`ok`, `error`).
pub const AUDIT_POLLS_TOTAL: &str = "opsync_audit_polls_total";
/// Counter: activity records new to the outbox.
pub const AUDIT_RECORDS_READ_TOTAL: &str = "opsync_audit_records_read_total";
/// Counter: log anomalies the tail saw, by `kind` (`reset`, `gap`).
pub const AUDIT_LOG_ANOMALIES_TOTAL: &str = "opsync_audit_log_anomalies_total";
/// Counter: records a sink acknowledged, by `sink`.
pub const AUDIT_SHIPPED_TOTAL: &str = "opsync_audit_shipped_total";
/// Counter: failed `ingest` calls, by `sink` and `kind` (`retryable`, `permanent`, `misconfigured`).
pub const AUDIT_FAILURES_TOTAL: &str = "opsync_audit_failures_total";
/// Counter: records a sink refused permanently (dead-lettered for it), by `sink`.
pub const AUDIT_DEAD_TOTAL: &str = "opsync_audit_dead_letters_total";
/// Histogram: duration of one `ingest` call, by `sink`.
pub const AUDIT_BATCH_DURATION_SECONDS: &str = "opsync_audit_batch_duration_seconds";
/// Gauge: the outbox seq a sink acknowledged last, by `sink`.
pub const AUDIT_CURSOR: &str = "opsync_audit_cursor";
/// Gauge: records waiting for a sink, by `sink`.
pub const AUDIT_PENDING: &str = "opsync_audit_pending_records";
/// Gauge: seconds since the oldest record waiting for a sink was logged, by `sink` (0 when none).
pub const AUDIT_LAG_SECONDS: &str = "opsync_audit_lag_seconds";
/// Counter: Events API requests, by `stream` (`introspect` for the token check) and `status`
/// (the HTTP status, or `error` when no answer came).
pub const AUDIT_EVENTS_REQUESTS_TOTAL: &str = "opsync_audit_events_requests_total";
/// Counter: Events API records new to the audit outbox, by `stream`.
pub const AUDIT_EVENTS_RECORDS_TOTAL: &str = "opsync_audit_events_records_total";
/// Counter: times the Events API source waited for its request budget or a `Retry-After`, by
/// `reason` (`budget`, `throttled`).
pub const AUDIT_EVENTS_WAITS_TOTAL: &str = "opsync_audit_events_waits_total";
/// Counter: own events that could not be written to the state database, by `action`.
pub const OWN_EVENTS_DROPPED_TOTAL: &str = "opsync_audit_own_events_dropped_total";
/// Counter: own events recorded, by `action`.
pub const OWN_EVENTS_TOTAL: &str = "opsync_audit_own_events_total";

// Plugins, as loaded at start.
/// Gauge: 1 when the configured plugin instance loaded, 0 when it is unusable, by `plugin`.
pub const PLUGIN_USABLE: &str = "opsync_plugin_usable";

// Rotation (help texts in rotation/telemetry.rs).
/// Counter: rotation steps by `job`, `step` and `result` (`ok`, `retryable`, `error`).
pub const ROTATION_STEPS_TOTAL: &str = "opsync_rotation_steps_total";
/// Histogram: rotation step duration by `job` and `step` (Connect requests and plugin call).
pub const ROTATION_STEP_DURATION_SECONDS: &str = "opsync_rotation_step_duration_seconds";
/// Counter: rotations ended, by `job` and `outcome` (`succeeded`, `rolled_back`, `failed`,
/// `stalled`, `skipped`).
pub const ROTATIONS_TOTAL: &str = "opsync_rotations_total";
/// Histogram: wall time of a whole rotation run, by `job`.
pub const ROTATION_DURATION_SECONDS: &str = "opsync_rotation_duration_seconds";
/// Gauge: when the job next runs (Unix seconds), by `job`.
pub const ROTATION_NEXT_RUN_TIMESTAMP_SECONDS: &str = "opsync_rotation_next_run_timestamp_seconds";
/// Gauge: when the job last succeeded (Unix seconds), by `job`.
pub const ROTATION_LAST_SUCCESS_TIMESTAMP_SECONDS: &str =
    "opsync_rotation_last_success_timestamp_seconds";

// The process.
/// Gauge: 1, labelled with the opsync `version`.
pub const BUILD_INFO: &str = "opsync_build_info";

/// Every metric name above: what dashboards and alert rules may query.
pub const ALL: &[&str] = &[
    LEADER,
    LEADER_EPOCH,
    LEADERSHIP_TAKEN_TOTAL,
    DELIVERY_CLAIMS,
    POLL_DURATION_SECONDS,
    POLLS_TOTAL,
    CHANGES_DETECTED_TOTAL,
    ROUTE_HELD,
    ROUTE_LAG_SECONDS,
    DELIVERIES_TOTAL,
    DELIVERY_LATENCY_SECONDS,
    RETRIES_TOTAL,
    DEAD_LETTERS_TOTAL,
    DRIFT_CHECKS_TOTAL,
    DRIFT_DETECTED_TOTAL,
    DRIFT_REPAIRS_TOTAL,
    PENDING,
    DEAD_LETTERS,
    CONNECT_REQUESTS_TOTAL,
    CONNECT_REQUEST_DURATION_SECONDS,
    CONNECT_TOKEN_EXPIRY_SECONDS,
    PLUGIN_CALLS_TOTAL,
    PLUGIN_CALL_DURATION_SECONDS,
    PLUGIN_HTTP_REQUESTS_TOTAL,
    PLUGIN_HTTP_DENIED_TOTAL,
    PLUGIN_SECRET_REVEALS_TOTAL,
    PLUGIN_LOG_DROPPED_TOTAL,
    PLUGIN_OUTPUT_DROPPED_BYTES_TOTAL,
    PLUGIN_DIR_FLUSHES_TOTAL,
    PLUGIN_DIR_FLUSH_DURATION_SECONDS,
    PLUGIN_USABLE,
    AUDIT_POLLS_TOTAL,
    AUDIT_RECORDS_READ_TOTAL,
    AUDIT_LOG_ANOMALIES_TOTAL,
    AUDIT_SHIPPED_TOTAL,
    AUDIT_FAILURES_TOTAL,
    AUDIT_DEAD_TOTAL,
    AUDIT_BATCH_DURATION_SECONDS,
    AUDIT_CURSOR,
    AUDIT_PENDING,
    AUDIT_LAG_SECONDS,
    AUDIT_EVENTS_REQUESTS_TOTAL,
    AUDIT_EVENTS_RECORDS_TOTAL,
    AUDIT_EVENTS_WAITS_TOTAL,
    OWN_EVENTS_DROPPED_TOTAL,
    OWN_EVENTS_TOTAL,
    ROTATION_STEPS_TOTAL,
    ROTATION_STEP_DURATION_SECONDS,
    ROTATIONS_TOTAL,
    ROTATION_DURATION_SECONDS,
    ROTATION_NEXT_RUN_TIMESTAMP_SECONDS,
    ROTATION_LAST_SUCCESS_TIMESTAMP_SECONDS,
    BUILD_INFO,
];

/// Buckets for latency histograms, in seconds: 5 ms to 5 minutes.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// Registers the help text and unit of every metric with the installed recorder.
pub fn describe() {
    describe_histogram!(
        POLL_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of one poll of Connect (full=true for a full reconciliation)"
    );
    describe_counter!(POLLS_TOTAL, "Polls of Connect, by result");
    describe_counter!(
        CHANGES_DETECTED_TOTAL,
        "Item changes detected in Connect, by kind"
    );
    describe_gauge!(
        ROUTE_HELD,
        "1 while a route is held by the mass-deletion guard"
    );
    describe_counter!(
        DELIVERIES_TOTAL,
        "Delivery attempts, by route, plugin and outcome"
    );
    describe_histogram!(
        DELIVERY_LATENCY_SECONDS,
        Unit::Seconds,
        "Time from detecting a change to its delivery, by route"
    );
    describe_counter!(
        RETRIES_TOTAL,
        "Deliveries scheduled for another attempt, by route, plugin and error kind"
    );
    describe_counter!(
        DEAD_LETTERS_TOTAL,
        "Deliveries given up on and dead-lettered, by route and plugin"
    );
    describe_counter!(
        DRIFT_CHECKS_TOTAL,
        "Read-backs of what destinations hold, by route, plugin and result"
    );
    describe_counter!(
        DRIFT_DETECTED_TOTAL,
        "Items found drifted at a destination, by route, plugin and kind"
    );
    describe_counter!(
        DRIFT_REPAIRS_TOTAL,
        "Drifted items queued for delivery again, by route and plugin"
    );
    describe_gauge!(PENDING, "Ledger entries waiting to be delivered, by route");
    describe_gauge!(
        LEADER,
        "1 while this replica leads on a PostgreSQL state (polls, audit, deliveries, rotations)"
    );
    describe_gauge!(
        LEADER_EPOCH,
        "Epoch of the leader lease as this replica last saw it"
    );
    describe_counter!(LEADERSHIP_TAKEN_TOTAL, "Times this replica started leading");
    describe_gauge!(
        DELIVERY_CLAIMS,
        "Ledger rows this replica holds claimed for delivery on a PostgreSQL state, by route"
    );
    describe_gauge!(DEAD_LETTERS, "Dead letters currently held, by route");
    describe_counter!(
        CONNECT_REQUESTS_TOTAL,
        "Requests to Connect, by endpoint template, method and status"
    );
    describe_histogram!(
        CONNECT_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of requests to Connect, by endpoint template"
    );
    describe_gauge!(
        CONNECT_TOKEN_EXPIRY_SECONDS,
        Unit::Seconds,
        "Seconds until the Connect token expires (negative once expired)"
    );
    describe_counter!(
        PLUGIN_CALLS_TOTAL,
        "Plugin calls, by plugin, call and result (traps, timeouts and limits included)"
    );
    describe_histogram!(
        PLUGIN_CALL_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of plugin calls, by plugin and call"
    );
    describe_counter!(
        PLUGIN_HTTP_REQUESTS_TOTAL,
        "Outgoing HTTP requests made by plugins, by plugin"
    );
    describe_counter!(
        PLUGIN_HTTP_DENIED_TOTAL,
        "Outgoing HTTP requests refused by a plugin's allow-list, by plugin"
    );
    describe_counter!(
        PLUGIN_SECRET_REVEALS_TOTAL,
        "Secret values revealed to plugins, by plugin and field"
    );
    describe_counter!(
        PLUGIN_LOG_DROPPED_TOTAL,
        "Plugin log lines dropped over the per-call budget, by plugin"
    );
    describe_counter!(
        PLUGIN_OUTPUT_DROPPED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes a plugin wrote to stdout or stderr past the kept 16 KiB, by plugin and stream"
    );
    describe_gauge!(
        PLUGIN_USABLE,
        "1 when the configured plugin instance loaded at start, 0 when it is unusable"
    );
    describe_gauge!(
        ROUTE_LAG_SECONDS,
        Unit::Seconds,
        "Seconds since the oldest change still pending for the route was detected (0: none)"
    );
    describe_counter!(
        PLUGIN_DIR_FLUSHES_TOTAL,
        "Flushes of plugins' granted directories to disk before deliveries are recorded, by plugin and result"
    );
    describe_histogram!(
        PLUGIN_DIR_FLUSH_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of flushing a plugin's granted directory to disk, by plugin"
    );
    describe_counter!(
        AUDIT_POLLS_TOTAL,
        "Reads of Connect's activity log, by result"
    );
    describe_counter!(
        AUDIT_RECORDS_READ_TOTAL,
        "Activity records new to the audit outbox"
    );
    describe_counter!(
        AUDIT_EVENTS_REQUESTS_TOTAL,
        "Requests to the 1Password Events API, by stream and HTTP status"
    );
    describe_counter!(
        AUDIT_EVENTS_RECORDS_TOTAL,
        "Events API records new to the audit outbox, by stream"
    );
    describe_counter!(
        AUDIT_EVENTS_WAITS_TOTAL,
        "Times the Events API source waited for its request budget or a Retry-After, by reason"
    );
    describe_counter!(
        AUDIT_LOG_ANOMALIES_TOTAL,
        "Activity log resets and gaps (records pruned before they were read), by kind"
    );
    describe_counter!(
        AUDIT_SHIPPED_TOTAL,
        "Audit records a sink acknowledged, by sink"
    );
    describe_counter!(
        AUDIT_FAILURES_TOTAL,
        "Failed audit ingest calls, by sink and error kind"
    );
    describe_counter!(
        AUDIT_DEAD_TOTAL,
        "Audit records a sink refused permanently, by sink"
    );
    describe_histogram!(
        AUDIT_BATCH_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of one audit ingest call, by sink"
    );
    describe_gauge!(
        AUDIT_CURSOR,
        "The outbox seq a sink acknowledged last, by sink"
    );
    describe_gauge!(AUDIT_PENDING, "Audit records waiting for a sink, by sink");
    describe_gauge!(
        AUDIT_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest audit record waiting for a sink, by sink"
    );
    describe_counter!(
        OWN_EVENTS_TOTAL,
        "opsync's own audit events recorded, by action"
    );
    describe_counter!(
        OWN_EVENTS_DROPPED_TOTAL,
        "opsync's own audit events that could not be written to the state database, by action"
    );
    describe_gauge!(BUILD_INFO, "Always 1, labelled with the opsync version");
}

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn all_lists_every_name_defined_here_once() {
        let source = include_str!("names.rs");
        // Every string literal that starts with the prefix and holds a full name.
        let mut defined: Vec<&str> = source
            .match_indices("\"opsync_")
            .filter_map(|(at, _)| source[at + 1..].split('"').next())
            .filter(|name| name.len() > "opsync_".len())
            .collect();
        defined.sort_unstable();
        defined.dedup();
        let mut listed = ALL.to_vec();
        listed.sort_unstable();
        let before = listed.len();
        listed.dedup();
        assert_eq!(before, listed.len(), "a name is listed twice");
        assert_eq!(defined, listed);
    }
}
