//! What `opsync check-config` reports: the effective settings, redacted, and what the
//! Connect token grants, with vault names when asked to contact the server.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::{Settings, SourceSetting};
use crate::connect::client::ConnectClient;
use crate::connect::token::{ConnectClaims, decode_unverified};
use crate::human_time::span;
use crate::plugin::read_pinned;

/// A token expiring sooner than this gets a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The outcome of a check: text for stdout, warnings and errors for stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub text: String,
    /// Worth knowing; the configuration still works.
    pub warnings: Vec<String>,
    /// The configuration will not work; the command exits non-zero.
    pub errors: Vec<String>,
}

/// Checks `settings` as of `now`. With `online`, also asks the server for its health and the
/// names of the vaults the token grants (bounded by the configured timeouts).
pub async fn check(settings: &Settings, online: bool, now: DateTime<Utc>) -> CheckReport {
    let mut report = CheckReport {
        text: format!(
            "# Effective configuration (secrets redacted)\n{}",
            settings.to_redacted_toml()
        ),
        ..CheckReport::default()
    };
    let claims = match decode_unverified(settings.connect.token.expose()) {
        Ok(claims) => Some(claims),
        Err(e) => {
            report.errors.push(format!("connect.token: {e}"));
            None
        }
    };
    let names = if online {
        server_section(settings, &mut report).await
    } else {
        HashMap::new()
    };
    if let Some(claims) = claims {
        token_section(&claims, &names, now, &mut report);
    }
    pool_warning(settings, &mut report);
    pin_errors(settings, &mut report);
    report
}

/// A third-party plugin whose component does not match its pinned sha256 stops `run` and
/// `once` at start: the check says so first.
fn pin_errors(settings: &Settings, report: &mut CheckReport) {
    for p in &settings.plugins {
        if let SourceSetting::File { path, sha256 } = &p.source
            && let Err(e) = read_pinned(&p.name, path, sha256)
        {
            report.errors.push(format!("plugins.{}: {e}", p.name));
        }
    }
}

/// Every delivery reads its item from Connect: when the routes' deliveries at once outnumber the
/// idle connections kept, most requests open a new connection and close it after.
fn pool_warning(settings: &Settings, report: &mut CheckReport) {
    let at_once: usize = settings.routes.iter().map(|r| r.concurrency).sum();
    let idle = settings.connect.max_idle_per_host;
    if at_once > idle {
        report.warnings.push(format!(
            "connect.max_idle_per_host is {idle}, but the routes' concurrency adds up to \
             {at_once} deliveries at once, each reading its item from Connect: connections \
             beyond {idle} are closed after each request and opened again; set \
             connect.max_idle_per_host to at least {at_once}"
        ));
    }
}

/// Adds the server's name and version; returns vault names by id.
async fn server_section(settings: &Settings, report: &mut CheckReport) -> HashMap<String, String> {
    let host = settings.connect.host.as_str();
    let client = match ConnectClient::new(&settings.connect) {
        Ok(c) => c,
        Err(e) => {
            report.errors.push(format!("connect: {e}"));
            return HashMap::new();
        }
    };
    let _ = write!(report.text, "\n# Connect server\n{:<11} {host}\n", "url");
    match client.health().await {
        Ok(h) => {
            let _ = writeln!(report.text, "{:<11} {} {}", "server", h.name, h.version);
        }
        Err(e) => {
            report
                .errors
                .push(format!("could not reach the Connect server at {host}: {e}"));
            return HashMap::new();
        }
    }
    match client.list_vaults(None).await {
        Ok(vaults) => vaults.into_iter().map(|v| (v.id, v.name)).collect(),
        Err(e) => {
            report.errors.push(format!("listing vaults at {host}: {e}"));
            HashMap::new()
        }
    }
}

fn token_section(
    claims: &ConnectClaims,
    names: &HashMap<String, String>,
    now: DateTime<Utc>,
    report: &mut CheckReport,
) {
    let text = &mut report.text;
    let _ = writeln!(
        text,
        "\n# Connect token (decoded; only 1Password can verify its signature)"
    );
    let line = |text: &mut String, label: &str, value: &str| {
        let _ = writeln!(text, "{label:<11} {value}");
    };
    line(text, "account", or_unknown(&claims.auuid));
    line(text, "token id", or_unknown(&claims.jti));
    line(text, "issuer", or_unknown(&claims.iss));
    let issued = claims
        .issued_at()
        .filter(|_| claims.iat != 0)
        .map(timestamp)
        .unwrap_or_else(|| "unknown".to_owned());
    line(text, "issued at", &issued);
    match claims.expires_at() {
        None => line(text, "expires", "never"),
        Some(at) => {
            let when = timestamp(at);
            if at <= now {
                line(text, "expires", &format!("{when} (expired)"));
                report.errors.push(format!(
                    "the Connect token expired at {when}, {} ago; create a new one \
                     (op connect token create) and update connect.token",
                    approx(now - at)
                ));
            } else {
                let left = approx(at - now);
                line(text, "expires", &format!("{when} (in {left})"));
                if (at - now).to_std().unwrap_or_default() < EXPIRY_WARNING {
                    report.warnings.push(format!(
                        "the Connect token expires at {when}, in {left}; create a new one \
                         (op connect token create) before then"
                    ));
                }
            }
        }
    }
    line(text, "vaults", &claims.vts.len().to_string());
    for grant in &claims.vts {
        let name = if names.is_empty() {
            String::new()
        } else {
            names
                .get(&grant.u)
                .cloned()
                .unwrap_or_else(|| "(not visible to this token)".to_owned())
        };
        let row = format!("  {}  {:<2}  {name}", grant.u, grant.access().to_string());
        let _ = writeln!(text, "{}", row.trim_end());
    }
    if claims.vts.is_empty() {
        report
            .warnings
            .push("the Connect token grants no vaults".to_owned());
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A duration for people (negative counts as zero), in the same words as `opsync rotate status`.
fn approx(d: chrono::TimeDelta) -> String {
    span(d.max(chrono::TimeDelta::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approx_rounds_to_minutes() {
        assert_eq!(approx(chrono::TimeDelta::seconds(3 * 3600 + 61)), "3h 1m");
        assert_eq!(approx(chrono::TimeDelta::seconds(3 * 3600 - 1)), "3h");
        assert_eq!(approx(chrono::TimeDelta::seconds(42)), "42s");
        assert_eq!(approx(chrono::TimeDelta::seconds(-5)), "0s");
    }

    #[test]
    fn approx_puts_a_space_before_days() {
        let day = 24 * 3600;
        assert_eq!(approx(chrono::TimeDelta::seconds(2 * day + 120)), "2 days");
        assert_eq!(
            approx(chrono::TimeDelta::seconds(day + 3 * 3600 + 4 * 60)),
            "1 day 3h"
        );
        assert_eq!(approx(chrono::TimeDelta::seconds(30 * day)), "30 days");
        assert_eq!(approx(chrono::TimeDelta::seconds(5 * 60 + 10)), "5m");
    }
}
