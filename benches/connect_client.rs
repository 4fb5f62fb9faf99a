//! The Connect client fetching 10,000 full items from `connect-dev` (bulk:10x1000): items/s,
//! one request in flight and 16 in flight.
//!
//! `cargo bench --bench connect_client` (env `CONCURRENCY` overrides 16). Client and server share
//! the machine's two cores, so the figures are lower bounds for either alone.

mod support;

use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, stream};
use opsync::config::ConnectSettings;
use opsync::connect::client::ConnectClient;
use opsync::connect::model::SecretString;
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};

fn main() {
    let concurrency = support::env_or("CONCURRENCY", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let server = DevServer::start(DevServerOptions {
            seed: Seed::Bulk {
                vaults: 10,
                items_per_vault: 1000,
            },
            ..DevServerOptions::default()
        })
        .await
        .expect("server starts");
        let settings = ConnectSettings::new(
            server.base_url().parse().expect("base url"),
            SecretString::new(server.token()),
        );
        let client = ConnectClient::new(&settings).expect("client");

        let listed = Instant::now();
        let mut refs = Vec::new();
        for vault in client.list_vaults(None).await.expect("vaults") {
            for item in client.list_items(&vault.id, None).await.expect("items") {
                refs.push((vault.id.clone(), item.id));
            }
        }
        assert_eq!(refs.len(), 10_000);
        println!(
            "listed 10 vaults, {} item summaries in {:.0} ms",
            refs.len(),
            listed.elapsed().as_secs_f64() * 1000.0
        );

        for in_flight in [1, concurrency] {
            // A warm-up pass over a slice of the items, then the measured pass over all of them.
            fetch(&client, &refs[..500], in_flight).await;
            let (fetched, elapsed) = fetch(&client, &refs, in_flight).await;
            println!(
                "get_item x {fetched}, {in_flight} in flight: {:.2} s, {:.0} items/s",
                elapsed.as_secs_f64(),
                fetched as f64 / elapsed.as_secs_f64()
            );
        }
        server.shutdown().await;
    });
}

async fn fetch(
    client: &ConnectClient,
    refs: &[(String, String)],
    in_flight: usize,
) -> (usize, Duration) {
    let started = Instant::now();
    let fetched = stream::iter(refs)
        .map(|(vault, item)| client.get_item(vault, item))
        .buffer_unordered(in_flight)
        .fold(0usize, |n, item| async move {
            let item = item.expect("item fetched");
            assert!(item.fields.is_some(), "a full item has fields");
            n + 1
        })
        .await;
    (fetched, started.elapsed())
}
