//! The fake Events API of `opsync connect-dev`, driven over HTTP against the built binary: introspection, records made by Connect requests, cursors, shapes, tokens, faults.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use opsync::connect::token::decode_unverified;

const BIN: &str = env!("CARGO_BIN_EXE_opsync");
const CLIENT: &str = "events-test/1.2.3 reqwest/0.12 (Linux 6.8; x86_64)";

/// A running `opsync connect-dev` and what it printed.
struct Server {
    _child: Child,
    base: String,
    connect_token: String,
    http: reqwest::Client,
}

/// An answer: status, headers, JSON body (`Null` when empty).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// The message of an Events API error body, checking its shape.
    fn error_message(&self) -> &str {
        self.body["Error"]["Message"]
            .as_str()
            .unwrap_or_else(|| panic!("not an Events error body: {}", self.body))
    }
}

impl Server {
    /// `opsync connect-dev --listen 127.0.0.1:0 --quiet ARGS` in `dir`, once it has printed its
    /// host and token.
    async fn start_in(dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["connect-dev", "--listen", "127.0.0.1:0", "--quiet"])
            .args(args)
            .current_dir(dir)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("connect-dev starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("prints in time")
                .expect("reads stdout")
                .expect("a line")
        };
        let host = next().await;
        let token = next().await;
        Server {
            _child: child,
            base: host
                .strip_prefix("OP_CONNECT_HOST=")
                .expect("host line")
                .to_owned(),
            connect_token: token
                .strip_prefix("OP_CONNECT_TOKEN=")
                .expect("token line")
                .to_owned(),
            http: reqwest::Client::builder()
                .user_agent(CLIENT)
                .build()
                .expect("client"),
        }
    }

    async fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir.path(), args).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A Connect request with the printed token.
    async fn connect(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(&self.connect_token), body)
            .await
    }

    /// An Events token for `features` (all when empty), minted over HTTP.
    async fn events_token(&self, features: &[&str]) -> String {
        let reply = self
            .call(
                Method::POST,
                "/opsync-dev/events-tokens",
                Some(&self.connect_token),
                Some(json!({ "features": features })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["token"].as_str().expect("a token").to_owned()
    }

    /// `POST /api/{version}/{stream}` with `body`.
    async fn stream(&self, token: &str, version: &str, stream: &str, body: Value) -> Reply {
        self.call(
            Method::POST,
            &format!("/api/{version}/{stream}"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// A page that must succeed: its items, next cursor and `has_more`.
    async fn page(
        &self,
        token: &str,
        version: &str,
        stream: &str,
        body: Value,
    ) -> (Vec<Value>, String, bool) {
        let reply = self.stream(token, version, stream, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{stream}: {}", reply.body);
        let items = reply.body["items"].as_array().expect("items").clone();
        let cursor = reply.body["cursor"].as_str().expect("cursor").to_owned();
        (
            items,
            cursor,
            reply.body["has_more"].as_bool().expect("has_more"),
        )
    }

    /// The cursor at the end of `stream` now.
    async fn end_cursor(&self, token: &str, stream: &str) -> String {
        let (_, mut cursor, mut more) =
            self.page(token, "v2", stream, json!({"limit": 1000})).await;
        while more {
            (_, cursor, more) = self
                .page(token, "v2", stream, json!({"cursor": cursor}))
                .await;
        }
        cursor
    }

    async fn set_faults(&self, settings: Value) -> Value {
        let reply = self
            .connect(Method::PUT, "/opsync-dev/faults", Some(settings))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// The first vault named `name` and its first item.
    async fn vault_and_item(&self, name: &str) -> (String, String) {
        let vaults = self.connect(Method::GET, "/v1/vaults", None).await.body;
        let vault = vaults
            .as_array()
            .expect("vaults")
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no vault {name}: {vaults}"))["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let items = self
            .connect(Method::GET, &format!("/v1/vaults/{vault}/items"), None)
            .await
            .body;
        let item = items[0]["id"].as_str().expect("an item").to_owned();
        (vault, item)
    }
}

fn is_uuid_shaped(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 26
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    })
}

fn time_of(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value.as_str().expect("a timestamp");
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|_| panic!("not RFC 3339: {text}"))
}

#[tokio::test]
async fn introspection_and_token_separation() {
    let server = Server::start(&[]).await;
    let events = server
        .events_token(&["auditevents", "signinattempts"])
        .await;
    let account = decode_unverified(&server.connect_token)
        .expect("claims")
        .auuid;

    let v2 = server
        .call(Method::GET, "/api/v2/auth/introspect", Some(&events), None)
        .await;
    assert_eq!(v2.status, StatusCode::OK, "{}", v2.body);
    assert!(is_uuid_shaped(&v2.body["uuid"]), "{}", v2.body);
    assert_eq!(
        v2.body["features"],
        json!(["auditevents", "signinattempts"])
    );
    assert_eq!(v2.body["account_uuid"], account);
    let issued = time_of(&v2.body["issued_at"]);
    assert!((chrono::Utc::now() - issued.to_utc()).num_seconds().abs() < 120);

    // The deprecated v1 introspection, with the key spelling of its schema.
    let v1 = server
        .call(Method::GET, "/api/auth/introspect", Some(&events), None)
        .await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.body);
    assert_eq!(v1.body["UUID"], v2.body["uuid"]);
    assert_eq!(v1.body["Features"], v2.body["features"]);
    assert_eq!(v1.body["IssuedAt"], v2.body["issued_at"]);
    assert!(v1.body.get("account_uuid").is_none());

    // Missing, garbled and Connect tokens are 401 on the Events API...
    for token in [None, Some("garbage"), Some(server.connect_token.as_str())] {
        let reply = server
            .call(Method::GET, "/api/v2/auth/introspect", token, None)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(!reply.error_message().is_empty());
    }
    // ...and an Events token is 401 on Connect.
    let reply = server
        .call(Method::GET, "/v1/vaults", Some(&events), None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.body["message"].is_string(), "{}", reply.body);

    // The default feature set is all three; a lifetime makes an expiring token.
    let all = server.events_token(&[]).await;
    let claims = decode_unverified(&all).expect("claims");
    assert_eq!(claims.fts, ["auditevents", "itemusages", "signinattempts"]);
    assert_eq!(claims.aud, ["com.1password.streamingservice"]);
    let reply = server
        .call(
            Method::POST,
            "/opsync-dev/events-tokens",
            Some(&server.connect_token),
            Some(json!({"features": ["vaultaccess"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = server
        .call(
            Method::POST,
            "/opsync-dev/events-tokens",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn connect_reads_and_writes_become_records() {
    let server = Server::start(&[]).await;
    let events = server.events_token(&[]).await;
    let subject = decode_unverified(&server.connect_token)
        .expect("claims")
        .sub;
    let account = decode_unverified(&events).expect("claims").auuid;
    let mut cursors = Vec::new();
    for stream in ["signinattempts", "itemusages", "auditevents"] {
        cursors.push(server.end_cursor(&events, stream).await);
    }

    // First use of the token (a sign-in), a read, a file listing (not a usage), a write of
    // each kind, a refused token.
    let (vault, item) = server.vault_and_item("Production").await;
    let read = server
        .connect(
            Method::GET,
            &format!("/v1/vaults/{vault}/items/{item}"),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let version = read.body["version"].as_u64().expect("version");
    server
        .connect(
            Method::GET,
            &format!("/v1/vaults/{vault}/items/{item}/files"),
            None,
        )
        .await;
    let created = server
        .connect(
            Method::POST,
            &format!("/v1/vaults/{vault}/items"),
            Some(json!({"title": "events test", "category": "LOGIN"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let new_item = created.body["id"].as_str().expect("id").to_owned();
    let patched = server
        .connect(
            Method::PATCH,
            &format!("/v1/vaults/{vault}/items/{new_item}"),
            Some(json!([{"op": "replace", "path": "/title", "value": "renamed"}])),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let deleted = server
        .connect(
            Method::DELETE,
            &format!("/v1/vaults/{vault}/items/{new_item}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let refused = server
        .call(Method::GET, "/v1/vaults", Some("not.a.token"), None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // Sign-in attempts: the token's first use, then the refused token.
    let (sign_ins, _, more) = server
        .page(
            &events,
            "v2",
            "signinattempts",
            json!({"cursor": cursors[0]}),
        )
        .await;
    assert!(!more);
    let kinds: Vec<(&str, &str)> = sign_ins
        .iter()
        .map(|s| {
            (
                s["category"].as_str().expect("category"),
                s["type"].as_str().expect("type"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("success", "credentials_ok"),
            ("credentials_failed", "password_secret_bad")
        ]
    );
    let ok = &sign_ins[0];
    assert_eq!(ok["target_user"]["uuid"], subject);
    assert_eq!(ok["target_user"]["user_account_uuid"], account);
    assert_eq!(ok["account_uuid"], account);
    assert_eq!(ok["client"]["app_name"], "events-test");
    assert_eq!(ok["client"]["app_version"], "1.2.3");
    assert_eq!(ok["client"]["platform_name"], "reqwest");
    assert_eq!(ok["client"]["os_name"], "Linux");
    assert_eq!(ok["client"]["ip_address"], "127.0.0.1");
    assert_eq!(ok["country"], ok["location"]["country"]);
    assert!(ok["location"]["latitude"].is_number());
    assert!(is_uuid_shaped(&ok["uuid"]) && is_uuid_shaped(&ok["session_uuid"]));
    let stamp = ok["timestamp"].as_str().expect("timestamp");
    assert_eq!(
        stamp.len(),
        "2025-01-01T00:00:00.000000000Z".len(),
        "{stamp}"
    );

    // Item usages: one reveal, not the file listing.
    let (usages, _, _) = server
        .page(&events, "v2", "itemusages", json!({"cursor": cursors[1]}))
        .await;
    assert_eq!(usages.len(), 1, "{usages:?}");
    let usage = &usages[0];
    assert_eq!(usage["action"], "reveal");
    assert_eq!(usage["vault_uuid"], vault);
    assert_eq!(usage["item_uuid"], item);
    assert_eq!(usage["used_version"], version);
    assert_eq!(usage["user"]["uuid"], subject);
    assert!(usage["user"]["name"].is_string() && usage["user"]["email"].is_string());

    // Audit events: create, update, delete of the new item, in the vault.
    let (audit, _, _) = server
        .page(&events, "v2", "auditevents", json!({"cursor": cursors[2]}))
        .await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|a| a["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    for event in &audit {
        assert_eq!(event["object_type"], "item");
        assert_eq!(event["object_uuid"], new_item);
        assert_eq!(event["aux_uuid"], vault);
        assert_eq!(event["actor_uuid"], subject);
        assert_eq!(event["actor_details"]["uuid"], subject);
        assert_eq!(event["account_uuid"], account);
        assert_eq!(event["actor_account_uuid"], account);
        assert_eq!(event["session"]["uuid"], ok["session_uuid"]);
        assert_eq!(event["session"]["ip"], "127.0.0.1");
        assert!(time_of(&event["session"]["login_time"]) <= time_of(&event["timestamp"]));
    }
    assert_eq!(audit[0]["aux_id"], 1);
    assert_eq!(audit[1]["aux_id"], 2);
    let uuids: HashSet<&str> = audit
        .iter()
        .chain(&usages)
        .chain(&sign_ins)
        .map(|r| r["uuid"].as_str().expect("uuid"))
        .collect();
    assert_eq!(uuids.len(), audit.len() + usages.len() + sign_ins.len());

    // A second use of the token is no new sign-in; drained cursors stay put until records come.
    let (_, end, _) = server
        .page(
            &events,
            "v2",
            "signinattempts",
            json!({"cursor": cursors[0]}),
        )
        .await;
    server.connect(Method::GET, "/v1/vaults", None).await;
    let (items, again, more) = server
        .page(&events, "v2", "signinattempts", json!({"cursor": end}))
        .await;
    assert!(items.is_empty() && !more);
    assert_eq!(again, end, "the same position gives the same cursor");
    server
        .connect(
            Method::GET,
            &format!("/v1/vaults/{vault}/items/{item}"),
            None,
        )
        .await;
    let (items, _, _) = server
        .page(&events, "v2", "itemusages", json!({"cursor": cursors[1]}))
        .await;
    assert_eq!(items.len(), 2, "records added since are returned");
}

#[tokio::test]
async fn seeded_history_pages_oldest_first_until_drained() {
    let server = Server::start(&["--events-seed", "2500"]).await;
    let token = server.events_token(&[]).await;
    for stream in ["auditevents", "itemusages", "signinattempts"] {
        let (first, mut cursor, mut more) = server
            .page(&token, "v2", stream, json!({"limit": 1000}))
            .await;
        assert_eq!((first.len(), more), (1000, true), "{stream}");
        let mut all = first;
        let mut pages = 1;
        while more {
            let (items, next, has_more) = server
                .page(&token, "v2", stream, json!({"cursor": cursor}))
                .await;
            all.extend(items);
            (cursor, more) = (next, has_more);
            pages += 1;
        }
        assert_eq!((all.len(), pages), (2500, 3), "{stream}");
        let times: Vec<_> = all.iter().map(|r| time_of(&r["timestamp"])).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{stream}: oldest first"
        );
        let span = times[times.len() - 1] - times[0];
        assert!(span > chrono::Duration::days(6), "{stream}: {span}");
        assert!(times[times.len() - 1].to_utc() <= chrono::Utc::now());
        let uuids: HashSet<&str> = all
            .iter()
            .map(|r| r["uuid"].as_str().expect("uuid"))
            .collect();
        assert_eq!(uuids.len(), 2500, "{stream}: unique uuids");
        // Drained: nothing more, same cursor.
        let (items, again, more) = server
            .page(&token, "v2", stream, json!({"cursor": cursor}))
            .await;
        assert!(items.is_empty() && !more);
        assert_eq!(again, cursor);
    }
    // Without a limit a page holds 100.
    let (items, _, more) = server.page(&token, "v1", "itemusages", json!({})).await;
    assert_eq!((items.len(), more), (100, true));
    let reply = server
        .call(Method::POST, "/api/v1/itemusages", Some(&token), None)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "an empty body resets with defaults"
    );
}

#[tokio::test]
async fn reset_cursors_bound_a_time_window() {
    let server = Server::start(&["--events-seed", "1000"]).await;
    let token = server.events_token(&["auditevents"]).await;
    let (all, _, _) = server
        .page(&token, "v2", "auditevents", json!({"limit": 1000}))
        .await;
    let start = all[100]["timestamp"].clone();
    let end = all[300]["timestamp"].clone();
    let mut window = Vec::new();
    let (items, mut cursor, mut more) = server
        .page(
            &token,
            "v2",
            "auditevents",
            json!({"limit": 50, "start_time": start, "end_time": end}),
        )
        .await;
    window.extend(items);
    while more {
        let (items, next, has_more) = server
            .page(&token, "v2", "auditevents", json!({"cursor": cursor}))
            .await;
        window.extend(items);
        (cursor, more) = (next, has_more);
    }
    assert_eq!(window.len(), 200, "start inclusive, end exclusive");
    assert_eq!(window[0]["uuid"], all[100]["uuid"]);
    assert_eq!(window[199]["uuid"], all[299]["uuid"]);
    // Offsets other than Z are read as such.
    let start_plus_two = time_of(&start)
        .with_timezone(&chrono::FixedOffset::east_opt(7200).expect("offset"))
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
    let (items, _, _) = server
        .page(
            &token,
            "v2",
            "auditevents",
            json!({"limit": 1, "start_time": start_plus_two}),
        )
        .await;
    assert_eq!(items[0]["uuid"], all[100]["uuid"]);

    for bad in [
        json!({"limit": 0}),
        json!({"limit": 1001}),
        json!({"limit": 2.5}),
        json!({"start_time": "yesterday"}),
        json!({"start_time": end, "end_time": start}),
        json!([1, 2]),
    ] {
        let reply = server
            .stream(&token, "v2", "auditevents", bad.clone())
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.error_message().starts_with("Bad request"), "{bad}");
    }
}

#[tokio::test]
async fn v1_records_lack_the_v2_account_fields() {
    let server = Server::start(&["--events-seed", "300"]).await;
    let token = server.events_token(&[]).await;
    for stream in ["auditevents", "itemusages", "signinattempts"] {
        let (v1, _, _) = server
            .page(&token, "v1", stream, json!({"limit": 300}))
            .await;
        let (v2, _, _) = server
            .page(&token, "v2", stream, json!({"limit": 300}))
            .await;
        assert_eq!(v1.len(), v2.len());
        for (a, b) in v1.iter().zip(&v2) {
            assert_eq!(a["uuid"], b["uuid"], "{stream}: the same records");
            assert!(a.get("account_uuid").is_none(), "{stream}: {a}");
            assert!(b["account_uuid"].is_string(), "{stream}: {b}");
        }
        let user = match stream {
            "auditevents" => {
                assert!(v1.iter().all(|e| e.get("actor_type").is_none()));
                assert!(v2.iter().all(|e| e["actor_type"] == "user"));
                assert!(v2.iter().all(|e| e["actor_account_uuid"].is_string()));
                assert!(v2.iter().any(|e| e["object_details"]["email"].is_string()));
                assert!(v2.iter().all(|e| e["session"]["device_uuid"].is_string()));
                continue;
            }
            "itemusages" => "user",
            _ => "target_user",
        };
        assert!(v1.iter().all(|r| r[user].get("user_type").is_none()));
        assert!(v2.iter().all(|r| r[user]["user_type"] == "user"));
        assert!(
            v2.iter()
                .all(|r| r[user]["user_account_uuid"] == r["account_uuid"])
        );
    }
    // A cursor carries over between the versions of one stream.
    let (_, cursor, _) = server
        .page(&token, "v1", "itemusages", json!({"limit": 10}))
        .await;
    let (items, _, _) = server
        .page(&token, "v2", "itemusages", json!({"cursor": cursor}))
        .await;
    assert_eq!(items.len(), 10, "with the page size of its reset");
}

#[tokio::test]
async fn refusals_features_cursors_and_routes() {
    let server = Server::start(&["--events-seed", "10"]).await;
    let audit_only = server.events_token(&["auditevents"]).await;
    let reply = server
        .stream(&audit_only, "v2", "itemusages", json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.error_message().contains("itemusages"),
        "{}",
        reply.body
    );

    let (_, audit_cursor, _) = server
        .page(&audit_only, "v2", "auditevents", json!({"limit": 2}))
        .await;
    let all = server.events_token(&[]).await;
    let reply = server
        .stream(
            &all,
            "v2",
            "signinattempts",
            json!({"cursor": audit_cursor}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.error_message().contains("auditevents"),
        "{}",
        reply.body
    );
    let mut garbled = audit_cursor.into_bytes();
    let middle = garbled.len() / 2;
    garbled[middle] = if garbled[middle] == b'A' { b'B' } else { b'A' };
    let garbled = String::from_utf8(garbled).expect("ascii");
    for cursor in [
        garbled.as_str(),
        "aGVsbG8hIGlzIGl0IG1lIHlvdSBhcmUgbG9va2luZyBmb3IK",
        "",
    ] {
        let reply = server
            .stream(&all, "v2", "auditevents", json!({"cursor": cursor}))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{cursor}");
        assert!(!reply.error_message().is_empty());
    }

    for path in [
        "/api/v2/vaultaccess",
        "/api/v3/auditevents",
        "/api/v2/auth/nothing",
    ] {
        let reply = server
            .call(Method::POST, path, Some(&all), Some(json!({})))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!reply.error_message().is_empty(), "{path}");
    }
    let reply = server
        .call(Method::GET, "/api/v2/auditevents", Some(&all), None)
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!reply.error_message().is_empty());
}

#[tokio::test]
async fn storms_of_429_and_injected_failures() {
    let server = Server::start(&[
        "--events-seed",
        "10",
        "--events-429-rate",
        "1",
        "--events-retry-after",
        "3s",
    ])
    .await;
    let token = server.events_token(&[]).await;
    let reply = server.stream(&token, "v2", "auditevents", json!({})).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        reply.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert!(!reply.error_message().is_empty());
    let reply = server
        .call(Method::GET, "/api/v2/auth/introspect", Some(&token), None)
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    // Connect is not part of the storm.
    assert_eq!(
        server.connect(Method::GET, "/v1/vaults", None).await.status,
        StatusCode::OK
    );

    // Changed at run time, through the same endpoint as the other faults.
    let settings = server
        .set_faults(json!({"events429Rate": 0.5, "eventsRetryAfterSeconds": 2}))
        .await;
    assert_eq!(settings["events429Rate"], 0.5);
    assert_eq!(settings["eventsRetryAfterSeconds"], 2);
    assert_eq!(settings["failRate"], 0.0);
    let mut throttled = 0;
    for _ in 0..200 {
        let reply = server.stream(&token, "v2", "itemusages", json!({})).await;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                throttled += 1;
                assert_eq!(
                    reply.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()),
                    Some("2")
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!((50..=150).contains(&throttled), "{throttled} of 200 at 0.5");
    server.set_faults(json!({"events429Rate": 0})).await;
    assert_eq!(
        server
            .stream(&token, "v2", "itemusages", json!({}))
            .await
            .status,
        StatusCode::OK
    );

    // The server's own fail rate covers the Events API too, with its error body.
    server.set_faults(json!({"failRate": 1})).await;
    let reply = server.stream(&token, "v2", "itemusages", json!({})).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!reply.error_message().is_empty());
    assert_eq!(
        server.connect(Method::GET, "/v1/vaults", None).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let reply = server
        .connect(
            Method::PUT,
            "/opsync-dev/faults",
            Some(json!({"failRate": 2})),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "checked before applying"
    );
    server.set_faults(json!({"failRate": 0})).await;

    // Counted by stream and status.
    let metrics = server.call(Method::GET, "/metrics", None, None).await;
    let text = metrics.body.as_str().expect("text").to_owned();
    for series in [
        r#"connect_dev_events_requests_total{version="v2",stream="auditevents",status="429"} 1"#,
        r#"connect_dev_events_requests_total{version="v2",stream="introspect",status="429"} 1"#,
        r#"connect_dev_events_requests_total{version="v2",stream="itemusages",status="500"} 1"#,
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
}

#[tokio::test]
async fn per_token_budget() {
    let server = Server::start(&["--events-rate-limit", "3/min"]).await;
    let first = server.events_token(&[]).await;
    let second = server.events_token(&[]).await;
    for _ in 0..3 {
        let reply = server.stream(&first, "v2", "auditevents", json!({})).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let reply = server.stream(&first, "v2", "auditevents", json!({})).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = reply
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        server
            .stream(&second, "v2", "auditevents", json!({}))
            .await
            .status,
        StatusCode::OK,
        "another token has its own budget"
    );
    let settings = server.set_faults(json!({"eventsRateLimit": "off"})).await;
    assert_eq!(settings["eventsRateLimit"], "off");
    assert_eq!(
        server
            .stream(&first, "v2", "auditevents", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let settings = server
        .set_faults(json!({"eventsRateLimit": "published"}))
        .await;
    assert_eq!(settings["eventsRateLimit"], "600/min,30000/hour");
}

#[tokio::test]
async fn events_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().expect("utf-8");
    let server = Server::start_in(dir.path(), &["--state", state_arg]).await;
    let mint = |args: Vec<String>| async move {
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .output()
            .await
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let args = |extra: &[&str]| -> Vec<String> {
        ["connect-dev", "token", "--events"]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    };

    let (ok, by_state, err) =
        mint(args(&["--features", "auditevents", "--state", state_arg])).await;
    assert!(ok, "{err}");
    assert_eq!(
        server
            .stream(&by_state, "v2", "auditevents", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .stream(&by_state, "v2", "itemusages", json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let (ok, by_host, err) = mint(args(&[
        "--features",
        "itemusages,signinattempts",
        "--expires-in",
        "1h",
        "--host",
        &server.base,
        "--token",
        &server.connect_token,
    ]))
    .await;
    assert!(ok, "{err}");
    let claims = decode_unverified(&by_host).expect("claims");
    assert_eq!(claims.fts, ["itemusages", "signinattempts"]);
    assert!(claims.exp.is_some());
    assert_eq!(
        server
            .stream(&by_host, "v1", "signinattempts", json!({}))
            .await
            .status,
        StatusCode::OK
    );

    let (ok, _, err) = mint(args(&["--features", "vaultaccess", "--state", state_arg])).await;
    assert!(!ok && err.contains("vaultaccess"), "{err}");
    let (ok, _, _) = mint(args(&["--vault", "Production:r", "--state", state_arg])).await;
    assert!(!ok, "--vault and --events do not mix");
}

#[tokio::test]
async fn three_hundred_thousand_records_per_stream_start_and_page_fast() {
    let started = Instant::now();
    let server = Server::start(&["--events-seed", "300000"]).await;
    let ready = started.elapsed();
    assert!(ready < Duration::from_secs(20), "ready after {ready:?}");
    let token = server.events_token(&["itemusages"]).await;
    let (_, mut cursor, _) = server
        .page(&token, "v2", "itemusages", json!({"limit": 1000}))
        .await;
    let paging = Instant::now();
    for _ in 0..20 {
        let (items, next, more) = server
            .page(&token, "v2", "itemusages", json!({"cursor": cursor}))
            .await;
        assert_eq!(items.len(), 1000);
        assert!(more);
        cursor = next;
    }
    let per_page = paging.elapsed() / 20;
    assert!(
        per_page < Duration::from_millis(500),
        "{per_page:?} per page of 1000"
    );
}
