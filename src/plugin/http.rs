//! Outgoing HTTP for plugins: the allow-list (scheme, exact host or `*.suffix`, port), the
//! per-call request budget, body-size caps and clamped timeouts, enforced in the `wasi:http`
//! `send_request` hook. wasi:http never follows redirects, so every hop a guest follows comes back
//! through this hook and is checked again.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::plugin::limits::Limits;
use crate::plugin::tls::{self, TlsTrust};

/// One allowed destination: `https://api.example.com`, `https://*.example.com:8443`,
/// `http://127.0.0.1:8200`. The port defaults to the scheme's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    scheme: String,
    host: HostPattern,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com`, not `example.com` itself.
    Suffix(String),
}

/// Why an allow-list entry is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("allowed host `{rule}`: {reason}")]
pub struct HostRuleError {
    rule: String,
    reason: &'static str,
}

impl FromStr for HostRule {
    type Err = HostRuleError;

    fn from_str(rule: &str) -> Result<Self, Self::Err> {
        let err = |reason| HostRuleError {
            rule: rule.to_string(),
            reason,
        };
        let (scheme, rest) = rule
            .split_once("://")
            .ok_or_else(|| err("write it as scheme://host[:port]"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(err("the scheme must be http or https")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err("give only scheme, host and port"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => {
                let port = port.parse().map_err(|_| err("the port is not a number"))?;
                (host, port)
            }
            _ => (rest, default_port),
        };
        let host = host.to_ascii_lowercase();
        let pattern = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                HostPattern::Suffix(format!(".{suffix}"))
            }
            _ if host.is_empty() => return Err(err("the host is empty")),
            _ if host.contains('*') => {
                return Err(err("a wildcard may only be a leading `*.`"));
            }
            _ => HostPattern::Exact(host),
        };
        Ok(Self {
            scheme,
            host: pattern,
            port,
        })
    }
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Exact(h) => write!(f, "{}://{h}:{}", self.scheme, self.port),
            HostPattern::Suffix(s) => write!(f, "{}://*{s}:{}", self.scheme, self.port),
        }
    }
}

impl HostRule {
    /// Whether this rule lets a request to `scheme://host:port` through.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if !self.scheme.eq_ignore_ascii_case(scheme) || self.port != port {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match &self.host {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

/// A plugin's network grant: the allow-list plus the body and time caps.
#[derive(Clone, Debug, Default)]
pub struct HttpPolicy {
    pub allowed: Vec<HostRule>,
    /// Certificate authorities trusted beside the public roots (`grants.tls_ca`).
    pub tls: Option<TlsTrust>,
}

/// Told of every request a plugin's grants refused (plugin name, `scheme://host:port`): how the
/// host reports them as opsync's own audit events without this module knowing of the export.
#[derive(Clone)]
pub struct OnDenied(Arc<ReportDenied>);

/// The reporting function of [`OnDenied`]: plugin name, refused `scheme://host:port`.
type ReportDenied = dyn Fn(&str, &str) + Send + Sync;

impl OnDenied {
    pub fn new(report: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(report))
    }
}

impl std::fmt::Debug for OnDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnDenied")
    }
}

/// The hook state of one store: policy, plugin name and the per-call request budget.
pub struct HttpHooks {
    plugin: Arc<str>,
    policy: Arc<HttpPolicy>,
    on_denied: Option<OnDenied>,
    requests_left: u32,
    max_request_body: u64,
    max_response_body: u64,
    options: RequestOptions,
    /// Requests refused in this call.
    pub denied: u32,
}

impl HttpHooks {
    pub fn new(
        plugin: Arc<str>,
        policy: Arc<HttpPolicy>,
        limits: &Limits,
        on_denied: Option<OnDenied>,
    ) -> Self {
        Self {
            plugin,
            policy,
            on_denied,
            requests_left: limits.http_requests_per_call,
            max_request_body: limits.http_request_body_bytes,
            max_response_body: limits.http_response_body_bytes,
            options: RequestOptions {
                connect_timeout: Some(limits.http_connect_timeout),
                first_byte_timeout: Some(limits.http_read_timeout),
                between_bytes_timeout: Some(limits.http_read_timeout),
            },
            denied: 0,
        }
    }

    fn deny(&mut self, target: &str, reason: &str) -> HttpError {
        self.denied += 1;
        metrics::counter!(crate::telemetry::names::PLUGIN_HTTP_DENIED_TOTAL, "plugin" => self.plugin.to_string())
            .increment(1);
        tracing::warn!(plugin = %self.plugin, target, reason, "plugin HTTP request denied");
        if let Some(OnDenied(report)) = &self.on_denied {
            report(&self.plugin, target);
        }
        HttpError::HttpRequestDenied
    }

    /// Checks one request against the budget and allow-list; `Ok` carries the clamped options.
    fn check(&mut self, request: &http::Request<WasiBody>) -> Result<(), HttpError> {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(match scheme.as_str() {
            "http" => 80,
            _ => 443,
        });
        // Log only where the request went, never its path or query (they may carry secrets).
        let target = format!("{scheme}://{host}:{port}");
        if self.requests_left == 0 {
            return Err(self.deny(&target, "request budget of this call spent"));
        }
        self.requests_left -= 1;
        if !self
            .policy
            .allowed
            .iter()
            .any(|rule| rule.allows(&scheme, host, port))
        {
            return Err(self.deny(&target, "not in the plugin's allowed hosts"));
        }
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = declared
            && len > self.max_request_body
        {
            self.deny(&target, "request body above the limit");
            return Err(HttpError::HttpRequestBodySize(Some(len)));
        }
        metrics::counter!("opsync_plugin_http_requests_total", "plugin" => self.plugin.to_string())
            .increment(1);
        Ok(())
    }
}

/// Caps a body at `max` bytes, failing it with `too_big` past that.
fn limited(body: WasiBody, max: u64, too_big: HttpError) -> WasiBody {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let mut too_big = Some(too_big);
    Limited::new(body, max)
        .map_err(move |e| match e.downcast::<HttpError>() {
            Ok(inner) => *inner,
            Err(_) => too_big.take().unwrap_or(HttpError::HttpProtocolError),
        })
        .boxed_unsync()
}

fn clamp(asked: Option<RequestOptions>, cap: RequestOptions) -> RequestOptions {
    let min = |a: Option<std::time::Duration>, c: Option<std::time::Duration>| match (a, c) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => c.or(a),
    };
    let asked = asked.unwrap_or_default();
    RequestOptions {
        connect_timeout: min(asked.connect_timeout, cap.connect_timeout),
        first_byte_timeout: min(asked.first_byte_timeout, cap.first_byte_timeout),
        between_bytes_timeout: min(asked.between_bytes_timeout, cap.between_bytes_timeout),
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        if let Err(e) = self.check(&request) {
            return Box::new(async move { Err(e) });
        }
        let options = clamp(options, self.options);
        let max_request = self.max_request_body;
        let max_response = self.max_response_body;
        let request =
            request.map(|body| limited(body, max_request, HttpError::HttpRequestBodySize(None)));
        let trust = match (&self.policy.tls, request.uri().scheme_str()) {
            (Some(trust), Some(scheme)) if scheme.eq_ignore_ascii_case("https") => {
                Some(trust.config())
            }
            _ => None,
        };
        let plugin = Arc::clone(&self.plugin);
        let host = request.uri().host().unwrap_or_default().to_string();
        Box::new(async move {
            let sent = match trust {
                Some(config) => tls::send(request, options, config).await,
                None => wasmtime_wasi_http::default_send_request(request, Some(options))
                    .await
                    .map(|(response, io)| {
                        (
                            response.map(BodyExt::boxed_unsync),
                            Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                        )
                    }),
            };
            if let Err(HttpError::Tls(e)) = &sent {
                tracing::warn!(
                    %plugin, host, error = %e,
                    "plugin HTTPS: the server's certificate was not accepted; if a private CA \
                     signed it (a Kubernetes cluster's, for one), grant it with \
                     `plugins.{plugin}.grants.tls_ca`"
                );
            }
            let (response, io) = sent?;
            let response = response
                .map(|body| limited(body, max_response, HttpError::HttpResponseBodySize(None)));
            Ok((response, io))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> HostRule {
        s.parse().expect("valid rule")
    }

    #[test]
    fn exact_hosts_match_only_themselves_on_their_scheme_and_port() {
        let r = rule("https://api.example.com");
        assert!(r.allows("https", "api.example.com", 443));
        assert!(r.allows("https", "API.Example.com.", 443));
        assert!(!r.allows("http", "api.example.com", 443));
        assert!(!r.allows("https", "api.example.com", 8443));
        assert!(!r.allows("https", "api.example.com.evil.net", 443));
        assert!(!r.allows("https", "evil-api.example.com", 443));
    }

    #[test]
    fn suffix_rules_need_a_label_before_the_dot() {
        let r = rule("https://*.example.com:8443");
        assert!(r.allows("https", "a.example.com", 8443));
        assert!(r.allows("https", "b.a.example.com", 8443));
        assert!(!r.allows("https", "example.com", 8443));
        assert!(!r.allows("https", "evilexample.com", 8443));
        assert!(!r.allows("https", "a.example.com", 443));
    }

    #[test]
    fn ports_default_by_scheme_and_ip_literals_work() {
        assert!(rule("http://127.0.0.1:8200").allows("http", "127.0.0.1", 8200));
        assert!(rule("http://localhost").allows("http", "localhost", 80));
        assert_eq!(rule("https://x.io/").to_string(), "https://x.io:443");
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            "api.example.com",
            "ftp://x.io",
            "https://",
            "https://x.io/path",
            "https://a.*.io",
            "https://*",
            "https://x.io:port",
            "https://user@x.io",
        ] {
            assert!(bad.parse::<HostRule>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn timeouts_are_clamped_to_the_plugin_limits() {
        let cap = RequestOptions {
            connect_timeout: Some(std::time::Duration::from_secs(5)),
            first_byte_timeout: Some(std::time::Duration::from_secs(10)),
            between_bytes_timeout: Some(std::time::Duration::from_secs(10)),
        };
        let asked = RequestOptions {
            connect_timeout: Some(std::time::Duration::from_secs(600)),
            first_byte_timeout: Some(std::time::Duration::from_secs(1)),
            between_bytes_timeout: None,
        };
        let got = clamp(Some(asked), cap);
        assert_eq!(got.connect_timeout, Some(std::time::Duration::from_secs(5)));
        assert_eq!(
            got.first_byte_timeout,
            Some(std::time::Duration::from_secs(1))
        );
        assert_eq!(got.between_bytes_timeout, cap.between_bytes_timeout);
        assert_eq!(clamp(None, cap), cap);
    }
}
