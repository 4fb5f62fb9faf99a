//! Shared by the audit export's test suites: a line-per-record HTTP receiver that the test
//! audit-sink guest POSTs to (it can be told to be down, fail every Nth request, or refuse one
//! record), and that guest loaded to POST to it. Needs `mod plugin_support` beside it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opsync::plugin::{Grants, HostRule, HttpPolicy, Limits, Plugin};

use crate::plugin_support;

/// What the receiver got and how it behaves.
#[derive(Default)]
pub struct Inbox {
    /// Every acknowledged line, in arrival order.
    pub lines: Mutex<Vec<String>>,
    /// Answer 503 to everything.
    pub down: AtomicBool,
    /// When set to N > 0, answer 503 to every Nth request.
    pub fail_every: AtomicU64,
    /// Requests received.
    pub requests: AtomicU64,
    /// Answer 400 to a batch holding this request id.
    pub poison: Mutex<Option<String>>,
    /// Batches answered, by status.
    pub answers: Mutex<HashMap<u16, u64>>,
}

impl Inbox {
    /// Request ids acknowledged, in arrival order (with repeats).
    pub fn ids(&self) -> Vec<String> {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter_map(|l| l.split(' ').next().map(str::to_owned))
            .collect()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn answered(&self, status: u16) -> u64 {
        self.answers
            .lock()
            .expect("answers")
            .get(&status)
            .copied()
            .unwrap_or(0)
    }
}

/// A running receiver: `url` is where the guest POSTs.
pub struct Receiver {
    pub inbox: Arc<Inbox>,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inbox = Arc::new(Inbox::default());
        let app = Router::new()
            .route("/ingest", post(ingest))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { inbox, addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/ingest", self.addr)
    }

    /// The `grants.http` rule for it.
    pub fn rule(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The test audit-sink guest, loaded as plugin `name`, POSTing to this receiver (granted
    /// only its address).
    pub fn plugin(&self, name: &str) -> Plugin {
        let grants = Grants {
            http: HttpPolicy {
                allowed: vec![HostRule::from_str(&self.rule()).expect("rule")],
                tls: None,
            },
            ..Grants::default()
        };
        plugin_support::host()
            .load(plugin_support::spec_for(
                plugin_support::audit_wasm(),
                name,
                &[("token", "t"), ("url", &self.url())],
                Limits::default(),
                grants,
            ))
            .expect("the test sink loads")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn ingest(State(inbox): State<Arc<Inbox>>, body: String) -> StatusCode {
    let n = inbox.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let every = inbox.fail_every.load(Ordering::SeqCst);
    let status = if inbox.down.load(Ordering::SeqCst) || (every > 0 && n.is_multiple_of(every)) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if inbox
        .poison
        .lock()
        .expect("poison")
        .as_ref()
        .is_some_and(|p| body.lines().any(|l| l.starts_with(p.as_str())))
    {
        StatusCode::BAD_REQUEST
    } else {
        inbox
            .lines
            .lock()
            .expect("lines")
            .extend(body.lines().map(str::to_owned));
        StatusCode::OK
    };
    *inbox
        .answers
        .lock()
        .expect("answers")
        .entry(status.as_u16())
        .or_default() += 1;
    status
}
