//! The HTTP(S) server: axum on 127.0.0.1 port 0, plain or rustls, on its own thread and runtime.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Body;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::api::{Request, State};
use super::status::{self, Reply};

/// The largest request body the API server takes (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

pub type SharedState = Arc<Mutex<State>>;

/// The server thread; stopping it (on drop) ends its runtime and every connection.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    pub fn spawn(state: SharedState, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("kube-fake".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the kube fake");
                runtime.block_on(serve(state, tls, ready_tx, stopped));
            })
            .expect("spawn the kube fake's thread");
        let addr = ready_rx
            .recv()
            .expect("the kube fake's thread reports its address");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    state: SharedState,
    tls: Option<Arc<rustls::ServerConfig>>,
    ready: std::sync::mpsc::Sender<SocketAddr>,
    stopped: oneshot::Receiver<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("the bound address");
    let app = Router::new().fallback(handle).with_state(state);
    ready.send(addr).expect("start() waits for the address");
    let served = async {
        match tls {
            None => axum::serve(listener, app).await,
            Some(config) => axum::serve(TlsListener::start(listener, config), app).await,
        }
    };
    tokio::select! {
        served = served => served.expect("the kube fake serves"),
        _ = stopped => {}
    }
}

/// Every request goes through [`State::handle`], under the lock.
async fn handle(Shared(state): Shared<SharedState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return into_response(status::too_large(MAX_BODY));
    };
    let header = |name: header::HeaderName, headers: &HeaderMap| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        content_type: header(header::CONTENT_TYPE, &parts.headers),
        accept: header(header::ACCEPT, &parts.headers),
        authorization: header(header::AUTHORIZATION, &parts.headers),
        user_agent: header(header::USER_AGENT, &parts.headers),
        host: header(header::HOST, &parts.headers),
        body: body.to_vec(),
    };
    let reply = state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .handle(&request);
    into_response(reply)
}

fn into_response(reply: Reply) -> Response {
    let code = StatusCode::from_u16(reply.code).expect("a valid status code");
    let mut response = (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(reply.body.to_string()),
    )
        .into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("a valid header value"));
    }
    response
}

/// TLS connections, handshaken off the accept loop so one slow client blocks no other.
struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        let addr = listener.local_addr().expect("the bound address");
        let acceptor = TlsAcceptor::from(config);
        let (tx, accepted) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // A failed handshake (a client that does not trust the CA) just drops.
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Self { accepted, addr }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accept loop ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
