//! Every metric opsync exports: its name, its labels and its help text, in one place.
//!
//! Labels never carry a secret, an item title or a field value: only route, plugin and vault
//! names from config, endpoint templates, and small enums (outcome, kind, status).

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

// Detection.
/// Histogram: how long one poll of Connect took (`full`: `true` for a reconciliation).
pub const POLL_DURATION_SECONDS: &str = "opsync_poll_duration_seconds";
/// Counter: polls by `result` (`ok`, `error`).
pub const POLLS_TOTAL: &str = "opsync_polls_total";
/// Counter: item changes detected, by `kind` (`created`, `updated`, `deleted`).
pub const CHANGES_DETECTED_TOTAL: &str = "opsync_changes_detected_total";
/// Gauge: routes held back by the mass-deletion guard (`route`).
pub const ROUTE_HELD: &str = "opsync_route_held";

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
/// Counter: own events that could not be written to the state database, by `action`.
pub const OWN_EVENTS_DROPPED_TOTAL: &str = "opsync_audit_own_events_dropped_total";
/// Counter: own events recorded, by `action`.
pub const OWN_EVENTS_TOTAL: &str = "opsync_audit_own_events_total";

// The process.
/// Gauge: 1, labelled with the opsync `version`.
pub const BUILD_INFO: &str = "opsync_build_info";

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
    describe_gauge!(PENDING, "Ledger entries waiting to be delivered, by route");
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
