//! `connect-dev` throughput: GET item against a bulk:10x1000 server with 16 concurrent clients,
//! first as reqwest clients (what the daemon uses), then as bare hyper connections.
//!
//! `cargo bench --bench connect_dev` (env `REQUESTS`, `CLIENTS` override the defaults). The
//! clients run in the same process and share the machine's cores with the server, so the
//! figure is a lower bound for the server alone. `SERVE_FOR=SECONDS` only serves, printing an
//! item URL and a token for an outside load generator such as `wrk`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use opsync::connect_dev::{DevServer, DevServerOptions, Seed};
use serde_json::Value;

fn main() {
    let requests = support::env_or("REQUESTS", 200_000);
    let clients = support::env_or("CLIENTS", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let seeded = Instant::now();
        let server = DevServer::start(DevServerOptions {
            seed: Seed::Bulk {
                vaults: 10,
                items_per_vault: 1000,
            },
            ..DevServerOptions::default()
        })
        .await
        .expect("server starts");
        println!("seeded bulk:10x1000 in {:?}", seeded.elapsed());
        let base = server.base_url();
        let token = server.token().to_owned();
        let http = reqwest::Client::new();

        // Every (vault, item) path, from the listings.
        let vaults: Value = http
            .get(format!("{base}/v1/vaults"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("vaults")
            .json()
            .await
            .expect("json");
        let mut paths = Vec::new();
        for vault in vaults.as_array().expect("array") {
            let v = vault["id"].as_str().expect("id");
            let items: Value = http
                .get(format!("{base}/v1/vaults/{v}/items"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("items")
                .json()
                .await
                .expect("json");
            for item in items.as_array().expect("array") {
                let i = item["id"].as_str().expect("id");
                paths.push(format!("{base}/v1/vaults/{v}/items/{i}"));
            }
        }
        assert_eq!(paths.len(), 10_000);
        if let Ok(seconds) = std::env::var("SERVE_FOR") {
            // For an outside load generator: print what it needs, then just serve.
            println!("URL={}\nTOKEN={token}", paths[0]);
            let seconds = seconds.parse().unwrap_or(60);
            tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
            server.shutdown().await;
            return;
        }
        let paths = Arc::new(paths);

        let addr = server.addr();
        let paths: Arc<Vec<String>> = Arc::new(
            paths
                .iter()
                .map(|p| p.trim_start_matches(&base).to_owned())
                .collect(),
        );
        for driver in [Driver::Reqwest, Driver::Hyper] {
            // Warm up connections and the token cache.
            drive(driver, addr, &token, &paths, clients, clients * 50).await;
            let started = Instant::now();
            let bytes = drive(driver, addr, &token, &paths, clients, requests).await;
            let elapsed = started.elapsed();
            let rate = requests as f64 / elapsed.as_secs_f64();
            println!(
                "GET item, {driver:?} clients: {requests} requests, {clients} clients, {:.2} s: \
                 {rate:.0} requests/s ({} bytes/response avg)",
                elapsed.as_secs_f64(),
                bytes / requests.max(1)
            );
        }
        server.shutdown().await;
    });
}

/// The HTTP client the load comes from: reqwest as the daemon uses it, or bare hyper
/// connections (less client CPU, so closer to what the server alone can do).
#[derive(Clone, Copy, Debug)]
enum Driver {
    Reqwest,
    Hyper,
}

/// Runs `total` GETs spread over `clients` tasks, each on its own connection; returns the
/// bytes received.
async fn drive(
    driver: Driver,
    addr: SocketAddr,
    token: &str,
    paths: &Arc<Vec<String>>,
    clients: usize,
    total: usize,
) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (token, paths, next) = (token.to_owned(), Arc::clone(paths), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            match driver {
                Driver::Reqwest => reqwest_client(addr, &token, &paths, &next, total).await,
                Driver::Hyper => hyper_client(addr, &token, &paths, &next, total).await,
            }
        }));
    }
    let mut bytes = 0;
    for task in tasks {
        bytes += task.await.expect("client task");
    }
    bytes
}

/// A stride coprime with 10,000 visits every item.
fn pick(paths: &[String], n: usize) -> &str {
    &paths[(n * 7919) % paths.len()]
}

async fn reqwest_client(
    addr: SocketAddr,
    token: &str,
    paths: &[String],
    next: &AtomicUsize,
    total: usize,
) -> usize {
    let http = reqwest::Client::new();
    let mut bytes = 0;
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return bytes;
        }
        let url = format!("http://{addr}{}", pick(paths, n));
        let response = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("answered");
        assert!(response.status().is_success(), "{}", response.status());
        bytes += response.bytes().await.expect("body").len();
    }
}

async fn hyper_client(
    addr: SocketAddr,
    token: &str,
    paths: &[String],
    next: &AtomicUsize,
    total: usize,
) -> usize {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let authorization = format!("Bearer {token}");
    let mut bytes = 0;
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return bytes;
        }
        let request = hyper::Request::get(pick(paths, n))
            .header("host", addr.to_string())
            .header("authorization", &authorization)
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("answered");
        assert!(response.status().is_success(), "{}", response.status());
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body");
        bytes += body.to_bytes().len();
    }
}
