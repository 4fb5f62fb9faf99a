//! The status page and a dead letter's page as HTML: server-rendered, self-contained (inline
//! style, no script, nothing fetched from elsewhere), refreshing itself. Every interpolated
//! value is escaped by the template engine.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::status::document::{
    ConnectStatus, DeadLetter, DestinationStatus, Health, RotationStatus, RouteStatus, SinkStatus,
    StateStatus, StatusDocument,
};

/// How often the page reloads itself, in seconds.
pub const REFRESH_SECONDS: u32 = 10;

const STYLE: &str = r#"
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --mute: #6e7781; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 76rem; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 .8rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #8884; vertical-align: top; }
th { font-weight: 600; font-size: .85rem; color: var(--mute); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--mute); } .err { color: var(--bad); font-family: ui-monospace, monospace; font-size: .85rem; word-break: break-word; }
.badge { display: inline-block; white-space: nowrap; padding: 0 .45rem; border-radius: .6rem; font-size: .8rem; font-weight: 600; color: #fff; }
.s-synced, .s-ok, .s-succeeded, .s-leader { background: var(--ok); }
.s-follower { background: var(--mute); }
.s-pending, .s-retrying, .s-unknown, .s-busy, .s-skipped { background: var(--warn); }
.s-dead_letter, .s-held, .s-plugin_unusable, .s-drifted, .s-failing, .s-failed, .s-rolled_back { background: var(--bad); }
.hold { border-left: 4px solid var(--bad); padding: .3rem .7rem; margin: .4rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; } dt { color: var(--mute); } dd { margin: 0; }
"#;

/// The status page.
pub fn page(doc: &StatusDocument) -> String {
    let now = doc.generated_at;
    layout(
        "opsync status",
        true,
        html! {
            header {
                h1 { "opsync status" }
                p.muted {
                    "opsync " (doc.opsync_version) " · " (stamp(now)) " · reloads every "
                    (REFRESH_SECONDS) " s · " a href="status" { "JSON" }
                }
            }
            (connect(&doc.connect, now))
            section id="routes" {
                h2 { "Routes" }
                @if doc.routes.is_empty() { p.muted { "No [[route]] configured." } }
                @for r in &doc.routes { (route(r, now)) }
            }
            (rotations(&doc.rotations, now))
            (sinks(&doc.audit_sinks, now))
            (dead_letters(&doc.dead_letters.shown, doc.dead_letters.total, now))
            @if doc.state.backend == "postgres" { (replicas(&doc.state, now)) }
        },
    )
}

/// One dead letter's page.
pub fn dead_letter_page(d: &DeadLetter, now: DateTime<Utc>) -> String {
    layout(
        &format!("dead letter #{}", d.id),
        false,
        html! {
            p { a href="../" { "← status" } }
            h1 { "Dead letter #" (d.id) }
            dl id="dead-letter" {
                dt { "Route" } dd { (d.route) }
                dt { "Destination" } dd { (d.destination) }
                dt { "Item" } dd { (d.title) " " span.muted { "(" (d.item_id) ")" } }
                dt { "Vault" } dd { (d.vault) " " span.muted { "(" (d.vault_id) ")" } }
                dt { "Destination key" } dd { code { (d.key) } }
                dt { "Change" } dd { (d.kind) " of version " (d.version) }
                dt { "Detected" } dd { (when(Some(d.detected_at), now)) }
                dt { "Given up" } dd { (when(Some(d.dead_at), now)) " after " (d.attempts) " attempts" }
                dt { "Reason" } dd.err { (d.reason) }
            }
            p {
                "Queue it again: " code { "opsync deadletter retry --id " (d.id) }
            }
        },
    )
}

/// The page for a dead letter that is not (or no longer) there.
pub fn not_found_page(id: i64) -> String {
    layout(
        "not found",
        false,
        html! {
            p { a href="../" { "← status" } }
            h1 { "No dead letter #" (id) }
            p { "It was queued again, pruned, or never existed." }
        },
    )
}

fn layout(title: &str, refresh: bool, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh { meta http-equiv="refresh" content=(REFRESH_SECONDS); }
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

fn connect(c: &ConnectStatus, now: DateTime<Utc>) -> Markup {
    let health = match c.health {
        Health::Ok => "ok",
        Health::Failing => "failing",
        Health::Unknown => "unknown",
    };
    html! {
        section id="connect" {
            h2 { "Connect" }
            dl {
                dt { "Server" } dd { (c.host) }
                dt { "Health" } dd { (badge(health)) }
                dt { "Last successful poll" } dd { (when(c.last_poll_ok_at, now)) }
                @if let Some(e) = &c.last_error {
                    dt { "Last error" } dd { span.err { (e.message) } " " span.muted { (ago(e.at, now)) } }
                }
            }
        }
    }
}

fn route(r: &RouteStatus, now: DateTime<Utc>) -> Markup {
    html! {
        article.route id=(format!("route-{}", r.name)) data-route=(r.name) {
            h3 { (r.name) @if !r.in_config { " " span.muted { "(not in the config)" } } }
            p.muted {
                "Selects " (selection(r)) " · " span.items { (r.items_tracked) } (if r.items_tracked == 1 { " item" } else { " items" })
                " tracked · lag "
                span.lag { (secs(r.lag_seconds)) } " · last delivery " (when(r.last_delivered_at, now))
            }
            @if let Some(h) = &r.hold {
                div.hold {
                    strong { "Deletions held: " } (h.deletions) " of " (h.total)
                    " keys (max_delete_ratio " (h.max_delete_ratio) ") since " (stamp(h.since))
                    ". Check the source, then run once with " code { "--allow-mass-delete" } "."
                }
            }
            table.destinations {
                thead { tr {
                    th { "Destination" } th { "State" } th { "Pending" } th { "Retrying" }
                    th { "Dead" } th { "Drifted" } th { "Last delivery" } th { "Last error" }
                } }
                tbody {
                    @for d in &r.destinations { (destination(d, now)) }
                }
            }
        }
    }
}

fn selection(r: &RouteStatus) -> String {
    let s = &r.selection;
    let mut parts = Vec::new();
    if !s.vaults.is_empty() {
        parts.push(format!("vaults {}", s.vaults.join(", ")));
    }
    if !s.tags.is_empty() {
        parts.push(format!("tags {}", s.tags.join(", ")));
    }
    if let Some(t) = &s.title {
        parts.push(format!("title {t}"));
    }
    if !s.categories.is_empty() {
        parts.push(format!("categories {}", s.categories.join(", ")));
    }
    if parts.is_empty() {
        "every item".to_owned()
    } else {
        parts.join("; ")
    }
}

fn destination(d: &DestinationStatus, now: DateTime<Utc>) -> Markup {
    html! {
        tr.destination data-destination=(d.name) data-state=(d.state.as_str()) {
            td { (d.name) }
            td { (badge(d.state.as_str())) }
            td.num { (d.pending) } td.num { (d.retrying) } td.num { (d.dead) } td.num { (d.drifted) }
            td { (when(d.last_delivered_at, now)) }
            td.err { @if let Some(e) = &d.last_error { (e) } }
        }
    }
}

fn rotations(jobs: &[RotationStatus], now: DateTime<Utc>) -> Markup {
    html! {
        section id="rotations" {
            h2 { "Rotations" }
            @if jobs.is_empty() { p.muted { "No [[rotation]] configured." } } @else {
                table {
                    thead { tr {
                        th { "Job" } th { "Item" } th { "Schedule" } th { "Last result" }
                        th { "Next run" } th { "In flight" }
                    } }
                    tbody {
                        @for j in jobs {
                            tr.rotation data-job=(j.name) {
                                td { (j.name) }
                                td { (j.item) br; span.muted { "via " (j.plugin) } }
                                td { code { (j.schedule) } " " span.muted { (j.timezone) } }
                                td {
                                    @match &j.last_result {
                                        Some(r) => { (badge(r)) " " span.muted { (when(j.last_finished_at, now)) } }
                                        None => { span.muted { "never ran" } }
                                    }
                                    @if let Some(e) = &j.last_error { br; span.err { (e) } }
                                }
                                td { (next(j.next_run_at, now)) }
                                td.in-flight {
                                    @match &j.in_flight {
                                        Some(f) => {
                                            "step " strong { (f.step) } " (attempt " (f.attempt) ")"
                                            @if let Some(e) = &f.error { br; span.err { (e) } }
                                        }
                                        None => { span.muted { "—" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn sinks(sinks: &[SinkStatus], now: DateTime<Utc>) -> Markup {
    html! {
        section id="audit-sinks" {
            h2 { "Audit sinks" }
            @if sinks.is_empty() { p.muted { "No [[audit.sink]] configured." } } @else {
                table {
                    thead { tr {
                        th { "Sink" } th { "Cursor" } th { "Pending" } th { "Lag" } th { "Dead" }
                        th { "Last acknowledged" } th { "Last error" }
                    } }
                    tbody {
                        @for s in sinks {
                            tr.sink data-sink=(s.name) {
                                td { (s.name) br; span.muted { "via " (s.plugin) } }
                                td.num { @match s.cursor { Some(c) => { (c) } None => { span.muted { "—" } } } }
                                td.num { (s.pending) }
                                td { (secs(s.lag_seconds)) }
                                td.num { (s.dead) }
                                td { (when(s.acked_at, now)) }
                                td.err { @if let Some(e) = &s.last_error { (e.message) " " span.muted { (ago(e.at, now)) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn dead_letters(shown: &[DeadLetter], total: u64, now: DateTime<Utc>) -> Markup {
    html! {
        section id="dead-letters" {
            h2 { "Dead letters" }
            @if shown.is_empty() { p.muted { "None." } } @else {
                @if (shown.len() as u64) < total {
                    p.muted { "The newest " (shown.len()) " of " (total) "; " code { "opsync deadletter list" } " lists all." }
                }
                table {
                    thead { tr {
                        th { "#" } th { "Route → destination" } th { "Item" } th { "Change" }
                        th { "Attempts" } th { "Given up" } th { "Reason" }
                    } }
                    tbody {
                        @for d in shown {
                            tr.dead-letter data-id=(d.id) {
                                td { a href=(format!("dead-letters/{}", d.id)) { "#" (d.id) } }
                                td { (d.route) " → " (d.destination) }
                                td { (d.title) br; span.muted { (d.vault) } }
                                td { (d.kind) " v" (d.version) }
                                td.num { (d.attempts) }
                                td { (ago(d.dead_at, now)) }
                                td.err { (d.reason) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn replicas(state: &StateStatus, now: DateTime<Utc>) -> Markup {
    html! {
        section id="replicas" {
            h2 { "Replicas" }
            p.muted {
                @match &state.leader {
                    Some(l) if !l.expired => {
                        "Leader " code { (l.replica) } " at epoch " (l.epoch) ", leading since "
                        (ago(l.since, now)) ", lease renewed " (ago(l.renewed_at, now)) "."
                    }
                    Some(l) => {
                        "No leader: the lease of " code { (l.replica) } " at epoch " (l.epoch)
                        " ran out " (ago(l.expires_at, now)) "."
                    }
                    None => { "No leader yet." }
                }
            }
            @if state.replicas.is_empty() { p.muted { "No replica seen in the last minute." } } @else {
                table {
                    thead { tr {
                        th { "Replica" } th { "Role" } th { "Host" } th { "Version" }
                        th { "Last seen" } th { "Claimed rows" }
                    } }
                    tbody {
                        @for r in &state.replicas {
                            tr.replica data-replica=(r.id) {
                                td { code { (r.id) } br; span.muted { "pid " (r.pid) } }
                                td { (badge(&r.role)) }
                                td { (r.host) }
                                td { (r.version) }
                                td { (ago(r.last_seen_at, now)) }
                                td {
                                    @if r.claims.is_empty() { span.muted { "none" } }
                                    @for c in &r.claims { (c.route) ": " (c.rows) br; }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn badge(state: &str) -> Markup {
    html! { span class=(format!("badge s-{state}")) { (state.replace('_', " ")) } }
}

fn when(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match t {
        Some(t) => html! { time datetime=(stamp(t)) title=(stamp(t)) { (ago(t, now)) } },
        None => html! { span.muted { "never" } },
    }
}

fn next(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match t {
        Some(t) if t <= now => html! { time datetime=(stamp(t)) { "due now" } },
        Some(t) => html! {
            time datetime=(stamp(t)) title=(stamp(t)) {
                "in " (secs((t - now).num_seconds().max(0) as u64))
            }
        },
        None => html! { span.muted { "never" } },
    }
}

fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ago", secs((now - t).num_seconds().max(0) as u64))
}

/// A duration in its two largest units ("3h 12m", "24days 23h"): enough to read at a glance.
fn secs(s: u64) -> String {
    let full = humantime::format_duration(Duration::from_secs(s)).to_string();
    full.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
