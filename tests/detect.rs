//! Detection against the embedded Connect server: the `contentVersion` short-circuit (an idle
//! poll is one request, counted by the server), version diffs, full reconciliation, route
//! selection, deletion policies and the `max_delete_ratio` hold, failed polls that write
//! nothing, a vault whose listing fails (through a front that refuses it) deleting nothing
//! while the others go on, and a state database that never holds a secret value.

use std::collections::BTreeSet;
use std::time::Duration;

use opsync::config::ConnectSettings;
use opsync::connect::client::ConnectClient;
use opsync::connect::model::Item;
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};
use opsync::detect::{DetectOptions, Detector, PollReport};
use opsync::plugin::ChangeKind;
use opsync::route::{FieldSelection, Glob, NameTemplate, OnDelete, Route, Selector};
use opsync::store::Store;
use url::Url;

async fn server(seed: Seed) -> DevServer {
    DevServer::start(DevServerOptions {
        seed,
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev starts on port 0")
}

fn client(server: &DevServer) -> ConnectClient {
    let url = Url::parse(&server.base_url()).expect("base URL");
    ConnectClient::new(&ConnectSettings::new(url, server.token())).expect("client")
}

fn route(name: &str, selector: Selector, on_delete: OnDelete) -> Route {
    Route {
        name: name.into(),
        selector,
        destinations: vec!["files".into(), "vault".into()],
        name_template: NameTemplate::default(),
        fields: FieldSelection::All,
        files: false,
        on_delete,
        concurrency: 2,
        batch_size: 32,
        max_delete_ratio: 0.2,
        drift: None,
    }
}

fn all(name: &str, on_delete: OnDelete) -> Route {
    route(name, Selector::default(), on_delete)
}

fn detector(server: &DevServer, store: &Store, routes: Vec<Route>) -> Detector {
    Detector::new(
        client(server),
        store.clone(),
        routes,
        DetectOptions::default(),
    )
}

/// Requests the server answered on `/v1` (its own `/metrics` excluded), from its counters.
async fn served(server: &DevServer) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.base_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with("connect_dev_http_requests_total{") && l.contains("/v1"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn vault_id(c: &ConnectClient, name: &str) -> String {
    c.find_vault_by_name(name).await.expect("vault").id
}

async fn item(c: &ConnectClient, vault: &str, title: &str) -> Item {
    c.find_item_by_title(vault, title).await.expect("item")
}

async fn retag(c: &ConnectClient, vault: &str, title: &str, tags: &[&str]) -> Item {
    let mut it = item(c, vault, title).await;
    it.tags = tags.iter().map(|t| (*t).to_owned()).collect();
    c.replace_item(vault, &it.id.clone(), &it)
        .await
        .expect("replaced")
}

#[tokio::test]
async fn first_poll_enqueues_every_selected_item_per_destination_then_idle_polls_cost_one_request()
{
    let srv = server(Seed::Demo).await;
    let store = Store::open_in_memory().expect("store");
    let mut det = detector(&srv, &store, vec![all("everything", OnDelete::Retain)]);

    let first = det.poll(false).await.expect("first poll");
    assert_eq!(first.requests, 4, "vaults + 3 listings");
    assert_eq!(first.vaults_listed, 3);
    assert_eq!(first.items_changed, 13);
    assert_eq!(first.changes.len(), 13);
    assert!(first.changes.iter().all(|c| c.kind == ChangeKind::Created));
    assert_eq!(first.enqueued, 26, "one row per destination");
    let due = store
        .due("everything", chrono::Utc::now(), 100)
        .expect("due");
    assert_eq!(due.len(), 26);
    let admin = due
        .iter()
        .find(|d| d.entry.title == "Orders database" && d.entry.vault_name == "Production")
        .expect("an entry for the Production database");
    assert_eq!(admin.entry.key, "Production/Orders database");
    assert_eq!(admin.entry.kind, ChangeKind::Created);

    let before = served(&srv).await;
    for _ in 0..3 {
        let idle = det.poll(false).await.expect("idle poll");
        assert_eq!(idle.requests, 1);
        assert_eq!(idle.vaults_unchanged, 3);
        assert!(idle.changes.is_empty());
        assert_eq!(idle.enqueued, 0);
    }
    assert_eq!(
        served(&srv).await - before,
        3,
        "the server saw one request per idle poll"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn an_update_lists_only_its_vault_and_enqueues_the_new_version() {
    let srv = server(Seed::Demo).await;
    let c = client(&srv);
    let store = Store::open_in_memory().expect("store");
    let mut det = detector(&srv, &store, vec![all("everything", OnDelete::Retain)]);
    det.poll(false).await.expect("first poll");

    let staging = vault_id(&c, "Staging").await;
    let updated = retag(
        &c,
        &staging,
        "CI deploy token",
        &["staging", "ci", "rotated"],
    )
    .await;
    let before = served(&srv).await;
    let report = det.poll(false).await.expect("poll");
    assert_eq!(
        served(&srv).await - before,
        2,
        "vaults + the one changed vault"
    );
    assert_eq!(report.requests, 2);
    assert_eq!(report.changes.len(), 1);
    let change = &report.changes[0];
    assert_eq!(
        (change.kind, change.version, change.item_id.as_str()),
        (ChangeKind::Updated, updated.version, updated.id.as_str())
    );
    // The created row (never delivered) is superseded by the update: one pending row per
    // destination for that item.
    let due: Vec<_> = store
        .due("everything", chrono::Utc::now(), 100)
        .expect("due")
        .into_iter()
        .filter(|d| d.entry.item_id == updated.id)
        .collect();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|d| d.entry.version == updated.version));
    srv.shutdown().await;
}

#[tokio::test]
async fn routes_select_by_vault_name_or_id_tags_title_and_category() {
    let srv = server(Seed::Demo).await;
    let c = client(&srv);
    let production = vault_id(&c, "Production").await;
    let store = Store::open_in_memory().expect("store");
    let routes = vec![
        route(
            "prod-by-name",
            Selector {
                vaults: vec!["production".into()],
                ..Selector::default()
            },
            OnDelete::Retain,
        ),
        route(
            "prod-by-id-ssh",
            Selector {
                vaults: vec![production.clone()],
                tags: vec!["ssh".into()],
                ..Selector::default()
            },
            OnDelete::Retain,
        ),
        route(
            "databases",
            Selector {
                categories: vec!["database".into()],
                ..Selector::default()
            },
            OnDelete::Retain,
        ),
        route(
            "admin-titles",
            Selector {
                title: Some(Glob::new("Admin *").expect("glob")),
                ..Selector::default()
            },
            OnDelete::Retain,
        ),
    ];
    let mut det = detector(&srv, &store, routes);
    let report = det.poll(false).await.expect("poll");
    let titles = |r: &str| -> BTreeSet<String> {
        report
            .changes
            .iter()
            .filter(|c| c.route == r)
            .map(|c| format!("{}/{}", c.vault_name, c.title))
            .collect()
    };
    assert_eq!(titles("prod-by-name").len(), 6);
    assert_eq!(
        titles("prod-by-id-ssh"),
        BTreeSet::from([
            "Production/Bastion host".into(),
            "Production/Deploy key".into()
        ])
    );
    assert_eq!(
        titles("databases"),
        BTreeSet::from([
            "Production/Orders database".into(),
            "Staging/Orders database".into()
        ])
    );
    assert_eq!(
        titles("admin-titles"),
        BTreeSet::from([
            "Production/Admin Console".into(),
            "Staging/Admin Console".into()
        ])
    );

    // A tag removed: the item leaves the ssh route (retained: nothing to delete), and stays
    // in the by-name route as an update.
    retag(&c, &production, "Deploy key", &["production"]).await;
    let report = det.poll(false).await.expect("poll");
    let kinds: BTreeSet<(String, &str)> = report
        .changes
        .iter()
        .map(|c| (c.route.clone(), c.kind.as_str()))
        .collect();
    assert_eq!(kinds, BTreeSet::from([("prod-by-name".into(), "updated")]));
    assert_eq!(report.retained.len(), 1);
    assert_eq!(report.retained[0].route, "prod-by-id-ssh");
    srv.shutdown().await;
}

#[tokio::test]
async fn deletions_follow_on_delete_and_only_a_complete_listing_deletes() {
    let srv = server(Seed::Demo).await;
    let c = client(&srv);
    let shared = vault_id(&c, "Shared").await;
    let store = Store::open_in_memory().expect("store");
    let mut det = detector(
        &srv,
        &store,
        vec![
            all("keep", OnDelete::Retain),
            all("mirror", OnDelete::Delete),
        ],
    );
    det.poll(false).await.expect("first poll");

    let gone = item(&c, &shared, "Team mailbox").await;
    c.delete_item(&shared, &gone.id).await.expect("deleted");

    // Connect failing: the poll fails as a whole and writes nothing.
    srv.set_faults(Duration::ZERO, 1.0);
    assert!(det.poll(false).await.is_err());
    assert!(det.poll(true).await.is_err());
    srv.set_faults(Duration::ZERO, 0.0);

    let report = det.poll(false).await.expect("poll after recovery");
    let deleted: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Deleted)
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].route, "mirror");
    assert_eq!(deleted[0].item_id, gone.id);
    assert_eq!(deleted[0].key, "Shared/Team mailbox");
    assert_eq!(report.retained.len(), 1);
    assert_eq!(report.retained[0].route, "keep");
    let rows: Vec<_> = store
        .due("mirror", chrono::Utc::now(), 100)
        .expect("due")
        .into_iter()
        .filter(|d| d.entry.item_id == gone.id)
        .collect();
    assert_eq!(
        rows.len(),
        2,
        "one delete per destination, the create superseded"
    );
    assert!(rows.iter().all(|d| d.entry.kind == ChangeKind::Deleted));
    assert!(
        store
            .due("keep", chrono::Utc::now(), 100)
            .expect("due")
            .iter()
            .all(|d| d.entry.kind != ChangeKind::Deleted)
    );
    // Nothing more happens on the next polls.
    assert!(det.poll(true).await.expect("full").changes.is_empty());
    srv.shutdown().await;
}

#[tokio::test]
async fn a_mass_deletion_holds_the_route_until_allowed() {
    let srv = server(Seed::Demo).await;
    let c = client(&srv);
    let production = vault_id(&c, "Production").await;
    let store = Store::open_in_memory().expect("store");
    let routes = vec![
        all("mirror", OnDelete::Delete),
        route(
            "prod-lenient",
            Selector {
                vaults: vec!["Production".into()],
                ..Selector::default()
            },
            OnDelete::Delete,
        ),
    ];
    let mut routes = routes;
    routes[1].max_delete_ratio = 1.0;
    let mut det = detector(&srv, &store, routes);
    det.poll(false).await.expect("first poll");

    // 4 of the 13 items the route sends: more than 20 %.
    for title in [
        "Admin Console",
        "Orders database",
        "Payments API",
        "Bastion host",
    ] {
        let it = item(&c, &production, title).await;
        c.delete_item(&production, &it.id).await.expect("deleted");
    }
    for lenient_deletes in [4, 0] {
        let report = det.poll(false).await.expect("poll");
        assert_eq!(report.held.len(), 1, "held again at every poll");
        let held = &report.held[0];
        assert_eq!(
            (held.route.as_str(), held.deletions.len(), held.total),
            ("mirror", 4, 13)
        );
        assert_eq!(
            report.requests, 2,
            "the vault with held deletions is listed again"
        );
        // The lenient route is not held: its deletions go through at the first poll.
        assert_eq!(
            report
                .changes
                .iter()
                .filter(|c| c.route == "prod-lenient" && c.kind == ChangeKind::Deleted)
                .count(),
            lenient_deletes
        );
    }
    let status = store.route_status().expect("status");
    let mirror = status.iter().find(|s| s.route == "mirror").expect("mirror");
    assert_eq!(mirror.hold.as_ref().map(|h| h.deletions), Some(4));
    assert!(
        store
            .due("mirror", chrono::Utc::now(), 100)
            .expect("due")
            .iter()
            .all(|d| d.entry.kind != ChangeKind::Deleted),
        "nothing deleted while held"
    );

    det.set_allow_mass_delete(true);
    let report = det.poll(false).await.expect("allowed");
    assert!(report.held.is_empty());
    assert_eq!(
        report
            .changes
            .iter()
            .filter(|c| c.route == "mirror" && c.kind == ChangeKind::Deleted)
            .count(),
        4
    );
    assert!(store.holds().expect("holds").is_empty());
    det.set_allow_mass_delete(false);
    assert_eq!(
        det.poll(false).await.expect("idle").requests,
        1,
        "idle again"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn full_reconciliation_lists_everything_and_a_new_route_catches_up() {
    let srv = server(Seed::Demo).await;
    let store = Store::open_in_memory().expect("store");
    let mut det = detector(&srv, &store, vec![all("a", OnDelete::Retain)]);
    assert!(det.full_reconcile_due(chrono::Utc::now()).expect("due"));
    det.poll(true).await.expect("first full poll");
    assert!(!det.full_reconcile_due(chrono::Utc::now()).expect("not due"));
    assert!(
        det.full_reconcile_due(chrono::Utc::now() + chrono::Duration::hours(2))
            .expect("due later")
    );
    let full = det.poll(true).await.expect("full poll");
    assert!(full.full);
    assert_eq!(full.requests, 4);
    assert!(full.changes.is_empty(), "nothing changed");

    // A route added to config: the changed fingerprint forces a full listing, and the new
    // route gets every item it selects, the old one nothing.
    let mut det = detector(
        &srv,
        &store,
        vec![all("a", OnDelete::Retain), all("b", OnDelete::Retain)],
    );
    let report = det.poll(false).await.expect("poll with a new route");
    assert!(report.full);
    assert_eq!(report.changes.len(), 13);
    assert!(report.changes.iter().all(|c| c.route == "b"));
    assert_eq!(det.poll(false).await.expect("idle").requests, 1);
    srv.shutdown().await;
}

#[tokio::test]
async fn plan_writes_nothing() {
    let srv = server(Seed::Demo).await;
    let store = Store::open_in_memory().expect("store");
    let det = detector(&srv, &store, vec![all("a", OnDelete::Retain)]);
    let plan = det.plan().await.expect("plan");
    assert_eq!(plan.changes.len(), 13);
    assert_eq!(plan.enqueued, 0);
    assert!(
        store
            .due("a", chrono::Utc::now(), 100)
            .expect("due")
            .is_empty()
    );
    assert!(store.known_vaults().expect("vaults").is_empty());
    srv.shutdown().await;
}

#[tokio::test]
async fn the_state_database_holds_no_secret_value() {
    let srv = server(Seed::Demo).await;
    let c = client(&srv);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = Store::open(&path).expect("store");
    let mut det = detector(&srv, &store, vec![all("a", OnDelete::Delete)]);
    det.poll(true).await.expect("poll");
    let production = vault_id(&c, "Production").await;
    retag(
        &c,
        &production,
        "Payments API",
        &["production", "payments", "x"],
    )
    .await;
    det.poll(false).await.expect("poll");

    // Every value of every demo item, from Connect itself.
    let mut secrets = Vec::new();
    for v in c.list_vaults(None).await.expect("vaults") {
        for summary in c.list_items(&v.id, None).await.expect("items") {
            let full = c.get_item(&v.id, &summary.id).await.expect("item");
            for f in full.fields.unwrap_or_default() {
                if let Some(value) = f.value {
                    let value = value.expose().to_owned();
                    if value.len() >= 6 {
                        secrets.push(value);
                    }
                }
            }
        }
    }
    assert!(secrets.len() > 10, "the demo has secrets to look for");
    drop(det);
    drop(store);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        bytes.extend(std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    let haystack = String::from_utf8_lossy(&bytes);
    for s in &secrets {
        assert!(
            !haystack.contains(s.as_str()),
            "a secret value is in the state database"
        );
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_items_then_idle_polls_cost_one_request_each() {
    let srv = server(Seed::Bulk {
        vaults: 10,
        items_per_vault: 1000,
    })
    .await;
    let store = Store::open_in_memory().expect("store");
    let mut det = detector(&srv, &store, vec![all("bulk", OnDelete::Retain)]);
    let first = det.poll(false).await.expect("first poll");
    assert_eq!((first.requests, first.changes.len()), (11, 10_000));
    assert_eq!(first.enqueued, 20_000);
    let before = served(&srv).await;
    let idle = det.poll(false).await.expect("idle poll");
    assert_eq!(idle.requests, 1);
    assert_eq!(served(&srv).await - before, 1);
    let full = det.poll(true).await.expect("full poll");
    assert_eq!((full.requests, full.changes.len()), (11, 0));
    srv.shutdown().await;
}

/// A front for `server` that answers 500 to the item listing of `vault` and passes every
/// other request on to the real server behind it. Returns its base URL.
async fn failing_listing(server: &DevServer, vault: &str) -> (Url, tokio::task::JoinHandle<()>) {
    use axum::extract::{Request, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};

    #[derive(Clone)]
    struct Front {
        upstream: String,
        refused: String,
        http: reqwest::Client,
    }
    async fn pass(State(front): State<Front>, request: Request) -> Response {
        if request.uri().path() == front.refused {
            let body = r#"{"status":500,"message":"listing refused by the test front"}"#;
            return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
        }
        let mut forward = front.http.request(
            request.method().clone(),
            format!("{}{}", front.upstream, request.uri()),
        );
        for (name, value) in request.headers() {
            if name != axum::http::header::HOST {
                forward = forward.header(name, value);
            }
        }
        let body = axum::body::to_bytes(request.into_body(), usize::MAX)
            .await
            .expect("request body");
        let answer = forward.body(body).send().await.expect("upstream answers");
        let status = answer.status();
        let headers = answer.headers().clone();
        let bytes = answer.bytes().await.expect("upstream body");
        let mut response = (status, bytes).into_response();
        for (name, value) in &headers {
            if name != axum::http::header::CONTENT_LENGTH {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }

    let front = Front {
        upstream: server.base_url().trim_end_matches('/').to_owned(),
        refused: format!("/v1/vaults/{vault}/items"),
        http: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(pass).with_state(front);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("front binds");
    let url =
        Url::parse(&format!("http://{}", listener.local_addr().expect("addr"))).expect("front URL");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("front serves");
    });
    (url, task)
}

/// The items a poll enqueued deletions for.
fn deleted_items(report: &PollReport) -> BTreeSet<String> {
    report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Deleted)
        .map(|c| c.item_id.clone())
        .collect()
}

#[tokio::test]
async fn a_vault_whose_listing_fails_deletes_nothing_while_the_others_go_on() {
    let srv = server(Seed::Demo).await;
    let c = client(&srv);
    let store = Store::open_in_memory().expect("store");
    let routes = vec![all("mirror", OnDelete::Delete)];
    let mut det = detector(&srv, &store, routes.clone());
    det.poll(false).await.expect("first poll");

    let shared = vault_id(&c, "Shared").await;
    let staging = vault_id(&c, "Staging").await;
    let mailbox = item(&c, &shared, "Team mailbox").await;
    let token = item(&c, &staging, "CI deploy token").await;
    c.delete_item(&shared, &mailbox.id).await.expect("deleted");
    c.delete_item(&staging, &token.id).await.expect("deleted");

    // Shared's listing fails: Shared is reported and deletes nothing; Staging's deletion,
    // listed alongside, goes through.
    let (front, task) = failing_listing(&srv, &shared).await;
    let mut through_front = Detector::new(
        ConnectClient::new(&ConnectSettings::new(front, srv.token())).expect("client"),
        store.clone(),
        routes,
        DetectOptions::default(),
    );
    let report = through_front.poll(false).await.expect("poll");
    task.abort();
    assert_eq!(report.incomplete.len(), 1, "{:?}", report.incomplete);
    assert_eq!(report.incomplete[0].vault_id, shared);
    assert!(
        report.incomplete[0].reason.contains("500"),
        "{}",
        report.incomplete[0].reason
    );
    assert_eq!(deleted_items(&report), BTreeSet::from([token.id.clone()]));

    // Shared's contentVersion was not recorded: the next poll lists it, and its deletion
    // comes then.
    let report = det.poll(false).await.expect("poll with Shared listable");
    assert!(report.incomplete.is_empty());
    assert_eq!(deleted_items(&report), BTreeSet::from([mailbox.id.clone()]));
    srv.shutdown().await;
}
