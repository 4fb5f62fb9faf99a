//! Test audit sink: accepts batches, or refuses one holding a denied request when config says so.
//! With config `url` (`http://host:port/path`) it POSTs each batch there, one line per record
//! (`request-id action outcome actor-id target`), and maps the answer the way real sinks do:
//! 2xx acknowledged, 429 and 5xx retryable, any other status permanent.

wit_bindgen::generate!({
    world: "audit-sink",
    path: "../../../wit/0.1.0",
    generate_all,
});

use opsync::plugin::config;
use opsync::plugin::log::{Level, log};
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

struct TestSink;

impl Guest for TestSink {
    fn validate() -> Result<(), PluginError> {
        config::get_secret("token")
            .map(drop)
            .ok_or_else(|| PluginError::Misconfigured("token is required".into()))
    }

    fn ingest(batch: Vec<AuditEvent>) -> Result<(), PluginError> {
        if let Some(url) = config::get("url") {
            return post(&url, &batch);
        }
        let fail_on_deny = config::get("fail-on-deny").as_deref() == Some("yes");
        for event in &batch {
            let target = event
                .target
                .as_ref()
                .map(|t| format!("{} {:?}", t.kind, t.item_version))
                .unwrap_or_default();
            log(
                Level::Info,
                &format!(
                    "{} {} {} {target}",
                    event.request_id, event.action, event.outcome
                ),
            );
            if fail_on_deny && event.outcome == "DENY" {
                return Err(PluginError::Retryable(format!(
                    "refusing denied request {}",
                    event.request_id
                )));
            }
        }
        Ok(())
    }
}

export!(TestSink);

/// POSTs the batch as lines to `url` and maps the status.
fn post(url: &str, batch: &[AuditEvent]) -> Result<(), PluginError> {
    let mut body = String::new();
    for e in batch {
        let target = e
            .target
            .as_ref()
            .map(|t| {
                format!(
                    "{}:{}:{}",
                    t.kind,
                    t.vault_id.as_deref().unwrap_or("-"),
                    t.item_id.as_deref().unwrap_or("-")
                )
            })
            .unwrap_or_else(|| "-".into());
        body.push_str(&format!(
            "{} {} {} {} {target}\n",
            e.request_id, e.action, e.outcome, e.actor.id
        ));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| PluginError::Misconfigured("url: only http:// here".into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let retry = |m: String| PluginError::Retryable(m);
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&Method::Post)
        .map_err(|()| retry("method".into()))?;
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| retry("scheme".into()))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| retry("authority".into()))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| retry("path".into()))?;
    let outgoing = request.body().map_err(|()| retry("body".into()))?;
    // Send first: the body streams to the peer as it is written.
    let future = outgoing_handler::handle(request, None).map_err(|e| retry(format!("{e:?}")))?;
    {
        let stream = outgoing.write().map_err(|()| retry("stream".into()))?;
        for chunk in body.as_bytes().chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| retry(format!("writing the body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| retry(format!("{e:?}")))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| retry("no response".into()))?
        .map_err(|()| retry("response taken".into()))?
        .map_err(|e| retry(format!("{e:?}")))?;
    match response.status() {
        200..=299 => Ok(()),
        s @ (429 | 500..=599) => Err(PluginError::Retryable(format!("the sink answered {s}"))),
        s => Err(PluginError::Permanent(format!("the sink answered {s}"))),
    }
}
