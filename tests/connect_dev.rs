//! `opsync connect-dev` over real HTTP: status codes, messages, versions, files, activity, state, faults, tokens.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use opsync::connect::token::{Access, decode_unverified};
use opsync::connect_dev::{DevServer, DevServerOptions, ID_LIKE_TITLE, Seed};

struct Fixture {
    server: DevServer,
    http: reqwest::Client,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts Connect's error body and returns its message.
    fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        let message = body["message"].as_str().expect("a message").to_owned();
        assert!(!message.is_empty());
        assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
        message
    }
}

impl Fixture {
    async fn start(seed: Seed) -> Self {
        Self::with(DevServerOptions {
            seed,
            ..DevServerOptions::default()
        })
        .await
    }

    async fn with(opts: DevServerOptions) -> Self {
        let server = DevServer::start(opts).await.expect("server starts");
        Self {
            server,
            http: reqwest::Client::new(),
        }
    }

    fn token(&self) -> String {
        self.server.token().to_owned()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.server.base_url()));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let resp = req.send().await.expect("request answered");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("body").to_vec();
        assert_eq!(
            headers
                .get("1Password-Connect-Version")
                .and_then(|v| v.to_str().ok()),
            Some(opsync::connect_dev::CONNECT_VERSION),
            "every response carries the version header ({path})"
        );
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(&self.token()), None)
            .await
    }

    async fn get_as(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn send(&self, method: Method, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("json");
        self.call(method, path, Some(&self.token()), Some(&bytes))
            .await
    }

    async fn vault_id(&self, name: &str) -> String {
        let vaults = self.get("/v1/vaults").await.json();
        vaults
            .as_array()
            .expect("array")
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["id"].as_str())
            .unwrap_or_else(|| panic!("no vault {name}"))
            .to_owned()
    }

    async fn vault(&self, id: &str) -> Value {
        self.get(&format!("/v1/vaults/{id}")).await.json()
    }

    async fn item_id(&self, vault: &str, title: &str) -> String {
        let items = self.get(&format!("/v1/vaults/{vault}/items")).await.json();
        items
            .as_array()
            .expect("array")
            .iter()
            .find(|i| i["title"] == title)
            .and_then(|i| i["id"].as_str())
            .unwrap_or_else(|| panic!("no item {title}"))
            .to_owned()
    }

    async fn activity(&self, query: &str) -> (Vec<Value>, String) {
        let reply = self.get(&format!("/v1/activity{query}")).await;
        assert_eq!(reply.status, StatusCode::OK);
        let range = reply
            .headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .expect("Content-Range")
            .to_owned();
        (reply.json().as_array().expect("array").clone(), range)
    }

    async fn stop(self) {
        self.server.shutdown().await;
    }
}

fn field<'a>(item: &'a Value, id: &str) -> &'a Value {
    item["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["id"] == id || f["label"] == id))
        .unwrap_or_else(|| panic!("no field {id} in {item}"))
}

fn new_login(title: &str) -> Value {
    json!({
        "title": title, "category": "LOGIN", "tags": ["t1"],
        "vault": {"id": ""}, "id": "", "createdAt": "0001-01-01T00:00:00Z", "version": 99,
        "trashed": false, "favorite": false,
        "fields": [
            {"purpose": "USERNAME", "type": "STRING", "label": "username", "value": "svc"},
            {"purpose": "PASSWORD", "type": "CONCEALED", "label": "password", "generate": true,
             "recipe": {"length": 20, "characterSets": ["LETTERS", "DIGITS"], "excludeCharacters": "0O"}}
        ]
    })
}

#[tokio::test]
async fn root_endpoints_need_no_token() {
    let f = Fixture::start(Seed::Empty).await;
    let beat = f.call(Method::GET, "/heartbeat", None, None).await;
    assert_eq!(
        (beat.status, beat.body.as_slice()),
        (StatusCode::OK, &b"."[..])
    );
    let health = f.call(Method::GET, "/health", None, None).await.json();
    assert_eq!(health["name"], "1Password Connect API");
    assert!(
        health["dependencies"]
            .as_array()
            .expect("deps")
            .iter()
            .all(|d| d["status"] == "ACTIVE")
    );
    f.get("/v1/vaults").await;
    f.call(Method::GET, "/nope", None, None).await;
    let metrics = f.call(Method::GET, "/metrics", None, None).await;
    let text = String::from_utf8(metrics.body).expect("text");
    assert!(
        text.contains(
            r#"connect_dev_http_requests_total{method="GET",route="/v1/vaults",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    // A second server in the same process has its own counters.
    let g = Fixture::start(Seed::Empty).await;
    let other = g.call(Method::GET, "/metrics", None, None).await;
    assert!(!String::from_utf8_lossy(&other.body).contains("/v1/vaults"));
    g.stop().await;
    f.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let f = Fixture::start(Seed::Demo).await;
    f.call(Method::GET, "/v2/nothing", Some(&f.token()), None)
        .await
        .error(404);
    f.call(Method::GET, "/", None, None).await.error(404);
    f.call(Method::DELETE, "/v1/vaults", Some(&f.token()), None)
        .await
        .error(405);
    f.call(Method::POST, "/heartbeat", None, None)
        .await
        .error(405);
    f.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let f = Fixture::start(Seed::Demo).await;
    let token = f.token();
    let missing = f
        .call(Method::GET, "/v1/vaults", None, None)
        .await
        .error(401);
    assert!(missing.contains("Invalid"), "{missing}");
    f.get_as("/v1/vaults", "not-a-jwt").await.error(401);
    f.get_as("/v1/vaults", "a.b.c").await.error(401);
    let (head, rest) = token.split_once('.').expect("jwt");
    let (payload, sig) = rest.split_once('.').expect("jwt");
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}.{payload}.{flipped}{}", &sig[1..]);
    let msg = f.get_as("/v1/vaults", &tampered).await.error(401);
    assert_eq!(msg, "Invalid token signature");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{payload}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    f.get_as("/v1/vaults", &none).await.error(401);
    // Another server's token: a valid JWT signed with another key.
    let g = Fixture::start(Seed::Demo).await;
    let foreign = f.get_as("/v1/vaults", &g.token()).await.error(401);
    assert!(!foreign.contains(&g.token()));
    g.stop().await;
    // "Bearer" is case-insensitive; other schemes are refused.
    let resp = f
        .http
        .get(format!("{}/v1/vaults", f.server.base_url()))
        .header("Authorization", format!("bearer {token}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = f
        .http
        .get(format!("{}/v1/vaults", f.server.base_url()))
        .header("Authorization", format!("Basic {token}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    f.stop().await;
}

#[tokio::test]
async fn expired_tokens_are_401_and_logged_as_deny() {
    let f = Fixture::start(Seed::Demo).await;
    let short = f
        .server
        .mint_token(
            &[("Production".into(), Access::Read)],
            Some(Duration::from_secs(1)),
        )
        .expect("mint");
    let claims = decode_unverified(&short).expect("claims");
    assert!(claims.exp.is_some());
    assert_eq!(f.get_as("/v1/vaults", &short).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let msg = f.get_as("/v1/vaults", &short).await.error(401);
    assert!(msg.contains("expired"), "{msg}");
    let (records, _) = f.activity("?limit=5").await;
    let deny = &records[0];
    assert_eq!(deny["result"], "DENY");
    assert_eq!(deny["actor"]["jti"], claims.jti.as_str());
    f.stop().await;
}

#[tokio::test]
async fn scope_and_write_access() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let staging = f.vault_id("Staging").await;
    let item = f.item_id(&prod, "Admin Console").await;
    let other_item = f.item_id(&staging, "Admin Console").await;
    let ro = f
        .server
        .mint_token(&[("Production".into(), Access::Read)], None)
        .expect("mint");
    let claims = decode_unverified(&ro).expect("claims");
    assert_eq!(claims.vts.len(), 1);
    assert_eq!(claims.vts[0].a, Access::Read.acl());
    assert_eq!(claims.aud, ["com.1password.secretservice"]);
    assert_eq!(claims.iss, "com.1password.b5");

    let listed = f.get_as("/v1/vaults", &ro).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], prod.as_str());
    assert_eq!(
        f.get_as(&format!("/v1/vaults/{prod}/items/{item}"), &ro)
            .await
            .status,
        StatusCode::OK
    );

    let msg = f
        .get_as(&format!("/v1/vaults/{staging}"), &ro)
        .await
        .error(403);
    assert_eq!(msg, format!("vault {staging} is not in scope"));
    f.get_as(&format!("/v1/vaults/{staging}/items"), &ro)
        .await
        .error(403);
    f.get_as(&format!("/v1/vaults/{staging}/items/{other_item}"), &ro)
        .await
        .error(403);
    f.get_as(
        &format!("/v1/vaults/{staging}/items/{other_item}/files"),
        &ro,
    )
    .await
    .error(403);

    let body = serde_json::to_vec(&new_login("nope")).expect("json");
    let msg = f
        .call(
            Method::POST,
            &format!("/v1/vaults/{prod}/items"),
            Some(&ro),
            Some(&body),
        )
        .await
        .error(401);
    assert_eq!(
        msg,
        "Unauthorized Request, token does not have write access to the Vault"
    );
    f.call(
        Method::PUT,
        &format!("/v1/vaults/{prod}/items/{item}"),
        Some(&ro),
        Some(&body),
    )
    .await
    .error(401);
    f.call(
        Method::PATCH,
        &format!("/v1/vaults/{prod}/items/{item}"),
        Some(&ro),
        Some(b"[]"),
    )
    .await
    .error(401);
    f.call(
        Method::DELETE,
        &format!("/v1/vaults/{prod}/items/{item}"),
        Some(&ro),
        None,
    )
    .await
    .error(401);
    // Out of scope beats write access.
    f.call(
        Method::DELETE,
        &format!("/v1/vaults/{staging}/items/{other_item}"),
        Some(&ro),
        None,
    )
    .await
    .error(403);

    let (records, _) = f.activity("?limit=6").await;
    let denies: Vec<&Value> = records.iter().filter(|r| r["result"] == "DENY").collect();
    assert_eq!(denies.len(), 6, "{records:?}");
    assert!(
        denies
            .iter()
            .all(|r| r["actor"]["jti"] == claims.jti.as_str())
    );
    assert_eq!(records[0]["action"], "DELETE");
    assert_eq!(records[0]["resource"]["vault"]["id"], staging.as_str());
    f.stop().await;
}

#[tokio::test]
async fn ids_are_checked_before_lookup() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let item = f.item_id(&prod, "Web TLS certificate").await;
    let unknown = "zzzzzzzzzzzzzzzzzzzzzzzzzz";
    assert_eq!(
        f.get("/v1/vaults/NOT-AN-ID").await.error(400),
        "Invalid Vault UUID"
    );
    assert_eq!(
        f.get("/v1/vaults/ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            .await
            .error(400),
        "Invalid Vault UUID"
    );
    assert_eq!(
        f.get(&format!("/v1/vaults/{unknown}")).await.error(404),
        format!("vault {unknown} not found")
    );
    assert_eq!(
        f.get(&format!("/v1/vaults/{unknown}/items"))
            .await
            .error(404),
        format!("vault {unknown} not found")
    );
    assert_eq!(
        f.get(&format!("/v1/vaults/{prod}/items/short"))
            .await
            .error(400),
        "Invalid Item UUID"
    );
    assert_eq!(
        f.get(&format!("/v1/vaults/{prod}/items/{unknown}"))
            .await
            .error(404),
        format!("item {unknown} not found")
    );
    // The demo title that looks like an id is 404 as an id, found as a title.
    let staging = f.vault_id("Staging").await;
    f.get(&format!("/v1/vaults/{staging}/items/{ID_LIKE_TITLE}"))
        .await
        .error(404);
    let found = f
        .get(&format!(
            "/v1/vaults/{staging}/items?filter=title%20eq%20%22{ID_LIKE_TITLE}%22"
        ))
        .await
        .json();
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    assert_eq!(
        f.get(&format!("/v1/vaults/{prod}/items/{item}/files/bad"))
            .await
            .error(400),
        "Invalid File UUID"
    );
    assert_eq!(
        f.get(&format!("/v1/vaults/{prod}/items/{item}/files/{unknown}"))
            .await
            .error(404),
        format!("file {unknown} not found")
    );
    f.get(&format!(
        "/v1/vaults/{prod}/items/{item}/files/{unknown}/content"
    ))
    .await
    .error(404);
    f.call(
        Method::DELETE,
        &format!("/v1/vaults/{prod}/items/{unknown}"),
        Some(&f.token()),
        None,
    )
    .await
    .error(404);
    f.stop().await;
}

#[tokio::test]
async fn trailing_slashes_route_like_the_js_sdk_expects() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let item = f.item_id(&prod, "Web TLS certificate").await;
    assert_eq!(f.get("/v1/vaults/").await.status, StatusCode::OK);
    assert_eq!(
        f.get(&format!("/v1/vaults/{prod}/")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        f.get(&format!("/v1/vaults/{prod}/items/")).await.status,
        StatusCode::OK
    );
    let files = f
        .get(&format!("/v1/vaults/{prod}/items/{item}/files/"))
        .await
        .json();
    assert_eq!(files.as_array().map(Vec::len), Some(2));
    let created = f
        .send(
            Method::POST,
            &format!("/v1/vaults/{prod}/items/"),
            &new_login("slash"),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    assert_eq!(f.get("/v1/activity/").await.status, StatusCode::OK);
    f.stop().await;
}

#[tokio::test]
async fn filters() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let titles = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|i| i["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let fr = &f;
    let items = |q: String| {
        let path = format!("/v1/vaults/{prod}/items?filter={q}");
        async move { fr.get(&path).await }
    };
    // `+` is a space, as the Go SDK sends it; %20 as Python and JS do.
    assert_eq!(
        titles(&items("title+eq+%22Admin+Console%22".into()).await.json()),
        ["Admin Console"]
    );
    assert_eq!(
        titles(
            &items("title%20eq%20%22admin%20console%22".into())
                .await
                .json()
        ),
        ["Admin Console"]
    );
    assert_eq!(
        titles(&items("title+eq+%22ADMIN+CONSOLE%22".into()).await.json()),
        ["Admin Console"]
    );
    assert_eq!(
        titles(&items("title+co+%22DATA%22".into()).await.json()),
        ["Orders database"]
    );
    assert_eq!(
        titles(&items("tag+eq+%22SSH%22".into()).await.json()).len(),
        2
    );
    assert!(titles(&items("title+eq+%22Admin%22".into()).await.json()).is_empty());
    assert_eq!(
        titles(
            &items("tag+eq+%22ssh%22+and+title+co+%22key%22".into())
                .await
                .json()
        ),
        ["Deploy key"]
    );
    // Vaults answer both `name` and `title`, ignoring case.
    for q in ["name+eq+%22production%22", "title+eq+%22PRODUCTION%22"] {
        let vaults = f.get(&format!("/v1/vaults?filter={q}")).await.json();
        assert_eq!(vaults.as_array().map(Vec::len), Some(1), "{q}");
        assert_eq!(vaults[0]["id"], prod.as_str());
    }
    // Bad filters are 400 with a reason.
    let msg = items("title+eq+%22it's%22".into()).await.error(400);
    assert!(msg.contains("single quote"), "{msg}");
    items("title+eq+Admin".into()).await.error(400);
    items("title+like+%22x%22".into()).await.error(400);
    items("%22x%22".into()).await.error(400);
    items("".into()).await.error(400);
    let msg = items("name+eq+%22x%22".into()).await.error(400);
    assert!(msg.contains("unsupported attribute"), "{msg}");
    f.get("/v1/vaults?filter=tag+eq+%22x%22").await.error(400);
    f.stop().await;
}

#[tokio::test]
async fn list_calls_return_summaries() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let vault = f.vault(&prod).await;
    assert_eq!(vault["type"], "USER_CREATED");
    let items = f.get(&format!("/v1/vaults/{prod}/items")).await.json();
    let items = items.as_array().expect("array");
    assert_eq!(vault["items"], items.len());
    for item in items {
        assert_eq!(item["vault"]["id"], prod.as_str());
        assert_eq!(item["version"], 1);
        for absent in ["fields", "sections", "files"] {
            assert!(item.get(absent).is_none(), "{absent} in a summary: {item}");
        }
        for stamp in ["createdAt", "updatedAt"] {
            let s = item[stamp].as_str().expect("timestamp");
            assert!(s.ends_with('Z'), "{s}");
        }
    }
    let shared = f.vault(&f.vault_id("Shared").await).await;
    assert_eq!(shared["type"], "EVERYONE");
    f.stop().await;
}

#[tokio::test]
async fn create_replace_delete_move_versions() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let before = f.vault(&prod).await;

    let created = f
        .send(
            Method::POST,
            &format!("/v1/vaults/{prod}/items"),
            &new_login("Deploy bot"),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    let created = created.json();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(opsync::connect::model::is_connect_id(&id));
    assert_eq!(created["version"], 1);
    assert_eq!(created["vault"]["id"], prod.as_str());
    assert_ne!(created["createdAt"], "0001-01-01T00:00:00Z");
    assert!(
        created["lastEditedBy"]
            .as_str()
            .is_some_and(|s| s.len() == 26)
    );
    let password = field(&created, "password");
    let value = password["value"].as_str().expect("generated");
    assert_eq!(value.len(), 20);
    assert!(
        value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && c != '0' && c != 'O')
    );
    assert!(password["entropy"].as_f64().is_some_and(|e| e > 0.0));
    assert!(password.get("generate").is_none());

    let after_create = f.vault(&prod).await;
    assert_eq!(
        after_create["items"],
        before["items"].as_u64().expect("n") + 1
    );
    assert!(after_create["contentVersion"].as_u64() > before["contentVersion"].as_u64());

    let mut changed = f.get(&format!("/v1/vaults/{prod}/items/{id}")).await.json();
    changed["title"] = json!("Deploy bot 2");
    changed["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"type": "STRING", "label": "env", "value": "prod"}));
    let put = f
        .send(
            Method::PUT,
            &format!("/v1/vaults/{prod}/items/{id}"),
            &changed,
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    let put = put.json();
    assert_eq!(put["version"], 2);
    assert_eq!(put["createdAt"], created["createdAt"]);
    assert_eq!(
        field(&put, "password")["value"],
        value,
        "kept without generate"
    );
    assert!(
        field(&put, "env")["id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let after_put = f.vault(&prod).await;
    assert!(after_put["contentVersion"].as_u64() > after_create["contentVersion"].as_u64());

    let deleted = f
        .call(
            Method::DELETE,
            &format!("/v1/vaults/{prod}/items/{id}"),
            Some(&f.token()),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    f.get(&format!("/v1/vaults/{prod}/items/{id}"))
        .await
        .error(404);
    let after_delete = f.vault(&prod).await;
    assert_eq!(after_delete["items"], before["items"]);
    assert!(after_delete["contentVersion"].as_u64() > after_put["contentVersion"].as_u64());
    f.stop().await;
}

#[tokio::test]
async fn create_refusals_are_400_with_reasons() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let path = format!("/v1/vaults/{prod}/items");
    let fr = &f;
    let post = |body: &'static [u8]| {
        let path = path.clone();
        async move {
            fr.call(Method::POST, &path, Some(&fr.token()), Some(body))
                .await
        }
    };
    for category in ["CUSTOM", "DOCUMENT"] {
        let body = json!({"title": "x", "category": category});
        let msg = f.send(Method::POST, &path, &body).await.error(400);
        assert!(msg.contains("category"), "{msg}");
    }
    assert_eq!(
        post(br#"{"title":"x","category":"SPACESHIP"}"#)
            .await
            .error(400),
        "Invalid item category"
    );
    let msg = post(br#"{"title":"x","category":"LOGIN","fields":[{"purpose":"PASSWORD"},{"purpose":"PASSWORD"}]}"#)
        .await
        .error(400);
    assert!(
        msg.contains("You can only use one \"password\" field."),
        "{msg}"
    );
    let msg = post(br#"{"title":"x","category":"LOGIN","fields":[{"purpose":"USERNAME"},{"purpose":"USERNAME"}]}"#)
        .await
        .error(400);
    assert!(msg.contains("username"), "{msg}");
    let msg = post(b"{\"title\": \"x\",").await.error(400);
    assert!(msg.starts_with("Invalid JSON"), "{msg}");
    let msg =
        post(br#"{"title":"x","category":"LOGIN","fields":[{"type":"STRING","value":424242}]}"#)
            .await
            .error(400);
    assert!(msg.contains("fields[0].value"), "{msg}");
    assert!(!msg.contains("424242"), "the value is not echoed: {msg}");
    let msg = post(br#"{"title":"x"}"#).await.error(400);
    assert!(msg.contains("category"), "{msg}");
    post(br#"{"title":"x","category":"LOGIN","fields":[{"type":"DATE","value":"31/12/2024"}]}"#)
        .await
        .error(400);
    post(
        br#"{"title":"x","category":"LOGIN","fields":[{"generate":true,"recipe":{"length":100}}]}"#,
    )
    .await
    .error(400);
    post(br#"[1,2]"#).await.error(400);
    post(b"").await.error(400);
    // Nothing was created.
    assert_eq!(f.vault(&prod).await["contentVersion"], 1 + 6);
    f.stop().await;
}

#[tokio::test]
async fn patch_forms() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let id = f.item_id(&prod, "Admin Console").await;
    let path = format!("/v1/vaults/{prod}/items/{id}");
    let fr = &f;
    let patch = |ops: Value| {
        let path = path.clone();
        async move { fr.send(Method::PATCH, &path, &ops).await }
    };

    let out = patch(json!([
        {"op": "replace", "path": "/fields/password/value", "value": "n3w-not-real"},
        {"op": "replace", "path": "/title", "value": "Admin Console v2"},
        {"op": "add", "path": "/tags/-", "value": "rotated"},
        {"op": "add", "path": "/fields", "value": {"label": "api_key", "type": "CONCEALED", "value": "abc"}}
    ]))
    .await;
    assert_eq!(out.status, StatusCode::OK);
    let out = out.json();
    assert_eq!(out["version"], 2);
    assert_eq!(out["title"], "Admin Console v2");
    assert_eq!(field(&out, "password")["value"], "n3w-not-real");
    assert_eq!(out["tags"], json!(["production", "web", "rotated"]));
    let api_key = field(&out, "api_key")["id"]
        .as_str()
        .expect("assigned id")
        .to_owned();

    let out = patch(json!([
        {"op": "remove", "path": format!("/fields/{api_key}")},
        {"op": "replace", "path": "/tags", "value": ["only"]},
        {"op": "replace", "path": "/fields/password/generate", "value": true}
    ]))
    .await
    .json();
    assert_eq!(out["version"], 3);
    assert_eq!(out["tags"], json!(["only"]));
    assert!(
        out["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .all(|f| f["label"] != "api_key")
    );
    let rotated = field(&out, "password")["value"]
        .as_str()
        .expect("value")
        .to_owned();
    assert_eq!(rotated.len(), 32, "generate with the default recipe");

    let out = patch(
        json!([{"op": "replace", "path": "/", "value": {"title": "Whole", "favorite": true}}]),
    )
    .await
    .json();
    assert_eq!(
        (
            out["version"].clone(),
            out["title"].clone(),
            out["favorite"].clone()
        ),
        (json!(4), json!("Whole"), json!(true))
    );
    assert_eq!(field(&out, "password")["value"], rotated.as_str());

    // No operations: nothing changes.
    let same = patch(json!([])).await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.json()["version"], 4);

    // Invalid documents.
    let msg = patch(json!({"op": "replace", "path": "/title", "value": "x"}))
        .await
        .error(400);
    assert!(msg.contains("array"), "{msg}");
    let msg = patch(json!([{"op": "move", "path": "/title", "from": "/x"}]))
        .await
        .error(400);
    assert!(msg.contains("move"), "{msg}");
    patch(json!([{"op": "replace", "path": "title", "value": "x"}]))
        .await
        .error(400);
    patch(json!([{"op": "replace", "path": "/version", "value": 1}]))
        .await
        .error(400);
    let msg = patch(json!([{"op": "replace", "path": "/fields/nope/value", "value": "x"}]))
        .await
        .error(400);
    assert_eq!(msg, "The item doesn't have a nope field.");
    patch(json!([{"op": "add", "path": "/fields", "value": {"purpose": "PASSWORD"}}]))
        .await
        .error(400);
    patch(json!([{"op": "replace", "path": "/category", "value": "CUSTOM"}]))
        .await
        .error(400);
    assert_eq!(
        f.get(&path).await.json()["version"],
        4,
        "refused patches change nothing"
    );
    f.stop().await;
}

#[tokio::test]
async fn patch_of_a_missing_path_is_refused_and_changes_nothing() {
    // RFC 6902 4.2 and 4.3: the target of `remove` and `replace` must exist.
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let id = f.item_id(&prod, "Payments API").await;
    let path = format!("/v1/vaults/{prod}/items/{id}");
    let before = f.get(&path).await.json();
    let vault_before = f.vault(&prod).await["contentVersion"].clone();
    assert!(
        before["urls"][0].get("label").is_none(),
        "the fixture's URL has no label: {before}"
    );
    for (ops, missing) in [
        (
            json!([{"op": "replace", "path": "/nonexistent", "value": "x"}]),
            "/nonexistent",
        ),
        (
            json!([{"op": "remove", "path": "/nonexistent"}]),
            "/nonexistent",
        ),
        (
            json!([{"op": "replace", "path": "/fields/credential/nonexistent", "value": "x"}]),
            "/fields/credential/nonexistent",
        ),
        (
            json!([{"op": "remove", "path": "/fields/credential/nonexistent"}]),
            "/fields/credential/nonexistent",
        ),
        (
            json!([{"op": "remove", "path": "/urls/0/label"}]),
            "/urls/0/label",
        ),
        (
            json!([{"op": "replace", "path": "/urls/0/nonexistent", "value": "x"}]),
            "/urls/0/nonexistent",
        ),
        // A valid operation before the bad one is not applied either.
        (
            json!([
                {"op": "replace", "path": "/title", "value": "Payments API (patched)"},
                {"op": "remove", "path": "/nope"}
            ]),
            "/nope",
        ),
    ] {
        let msg = f.send(Method::PATCH, &path, &ops).await.error(400);
        assert!(
            msg.contains(&format!("\"{missing}\"")) && msg.contains("does not exist"),
            "{ops}: {msg}"
        );
    }
    assert_eq!(f.get(&path).await.json(), before, "the item is untouched");
    assert_eq!(f.vault(&prod).await["contentVersion"], vault_before);

    // An attribute the model has but the item leaves unset can be replaced.
    let out = f
        .send(
            Method::PATCH,
            &path,
            &json!([{"op": "replace", "path": "/urls/0/label", "value": "dashboard"}]),
        )
        .await;
    assert_eq!(out.status, StatusCode::OK);
    let out = out.json();
    assert_eq!(out["urls"][0]["label"], "dashboard");
    assert_eq!(
        out["version"],
        before["version"].as_u64().expect("version") + 1
    );
    f.stop().await;
}

#[tokio::test]
async fn files_and_inline_content() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let id = f.item_id(&prod, "Web TLS certificate").await;
    let files = f
        .get(&format!("/v1/vaults/{prod}/items/{id}/files"))
        .await
        .json();
    let files = files.as_array().expect("array").clone();
    assert_eq!(files.len(), 2);
    let item = f.get(&format!("/v1/vaults/{prod}/items/{id}")).await.json();
    assert_eq!(item["files"].as_array().map(Vec::len), Some(2));
    for file in &files {
        let fid = file["id"].as_str().expect("id");
        assert_eq!(
            file["content_path"],
            format!("/v1/vaults/{prod}/items/{id}/files/{fid}/content")
        );
        assert!(file.get("content").is_none());
        let content = f.get(file["content_path"].as_str().expect("path")).await;
        assert_eq!(content.status, StatusCode::OK);
        assert_eq!(
            content
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/octet-stream")
        );
        let disposition = content
            .headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            disposition,
            Some(
                format!(
                    "attachment; filename=\"{}\"",
                    file["name"].as_str().expect("name")
                )
                .as_str()
            )
        );
        assert_eq!(
            content.body.len() as u64,
            file["size"].as_u64().expect("size")
        );

        let one = f
            .get(&format!(
                "/v1/vaults/{prod}/items/{id}/files/{fid}?inline_files=true"
            ))
            .await
            .json();
        let inline = base64::engine::general_purpose::STANDARD
            .decode(one["content"].as_str().expect("inlined"))
            .expect("base64");
        assert_eq!(inline, content.body);
        let plain = f
            .get(&format!("/v1/vaults/{prod}/items/{id}/files/{fid}"))
            .await
            .json();
        assert!(plain.get("content").is_none());
    }
    let inlined = f
        .get(&format!(
            "/v1/vaults/{prod}/items/{id}/files?inline_files=true"
        ))
        .await
        .json();
    assert!(
        inlined
            .as_array()
            .expect("array")
            .iter()
            .all(|f| f["content"].is_string())
    );
    // An item without attachments lists none.
    let plain = f.item_id(&prod, "Payments API").await;
    assert_eq!(
        f.get(&format!("/v1/vaults/{prod}/items/{plain}/files"))
            .await
            .json(),
        json!([])
    );
    f.stop().await;
}

#[tokio::test]
async fn otp_fields_carry_the_current_code() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let id = f.item_id(&prod, "Admin Console").await;
    let item = f.get(&format!("/v1/vaults/{prod}/items/{id}")).await.json();
    let otp = field(&item, "one-time password");
    assert_eq!(otp["type"], "OTP");
    assert!(otp["id"].as_str().is_some_and(|s| s.starts_with("TOTP_")));
    let code = otp["totp"].as_str().expect("code");
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "{code}"
    );
    f.stop().await;
}

#[tokio::test]
async fn activity_records_requests_with_content_range() {
    let f = Fixture::start(Seed::Demo).await;
    let token = f.token();
    let jti = decode_unverified(&token).expect("claims").jti;
    let prod = f.vault_id("Production").await;
    let id = f.item_id(&prod, "Admin Console").await;
    f.get(&format!("/v1/vaults/{prod}/items/{id}")).await;
    let created = f
        .send(
            Method::POST,
            &format!("/v1/vaults/{prod}/items"),
            &new_login("audit me"),
        )
        .await
        .json();
    let new_id = created["id"].as_str().expect("id").to_owned();
    f.send(
        Method::PATCH,
        &format!("/v1/vaults/{prod}/items/{new_id}"),
        &json!([{"op": "replace", "path": "/title", "value": "audited"}]),
    )
    .await;
    f.call(
        Method::DELETE,
        &format!("/v1/vaults/{prod}/items/{new_id}"),
        Some(&token),
        None,
    )
    .await;

    let (records, range) = f.activity("").await;
    // list vaults, list items, get item, create, patch, delete: reading the log is not logged.
    assert_eq!(range, "1-6/6");
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["DELETE", "UPDATE", "CREATE", "READ", "READ", "READ"]
    );
    assert!(
        records
            .iter()
            .all(|r| r["result"] == "SUCCESS" && r["actor"]["jti"] == jti.as_str())
    );
    assert_eq!(records[0]["resource"]["type"], "ITEM");
    assert_eq!(records[0]["resource"]["item"]["id"], new_id.as_str());
    assert_eq!(records[0]["resource"]["itemVersion"], 2);
    assert_eq!(records[1]["resource"]["itemVersion"], 2);
    assert_eq!(records[2]["resource"]["itemVersion"], 1);
    assert_eq!(records[3]["resource"]["item"]["id"], id.as_str());
    assert_eq!(records[4]["resource"]["type"], "VAULT");
    assert_eq!(records[4]["resource"]["vault"]["id"], prod.as_str());
    assert_eq!(records[0]["actor"]["requestIp"], "127.0.0.1");
    let ids: std::collections::HashSet<&str> = records
        .iter()
        .map(|r| r["requestId"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 6);

    let (page, range) = f.activity("?limit=2&offset=1").await;
    assert_eq!(range, "2-3/6");
    assert_eq!(page[0]["requestId"], records[1]["requestId"]);
    let (page, range) = f.activity("?offset=10").await;
    assert!(page.is_empty());
    assert_eq!(range, "0-0/6");
    f.get("/v1/activity?limit=x").await.error(400);
    f.get("/v1/activity?limit=0").await.error(400);
    f.get("/v1/activity?offset=-1").await.error(400);
    f.call(Method::GET, "/v1/activity", None, None)
        .await
        .error(401);
    f.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("connect-dev.json");
    let opts = DevServerOptions {
        seed: Seed::Demo,
        state: Some(state.clone()),
        ..DevServerOptions::default()
    };
    let f = Fixture::with(opts.clone()).await;
    assert!(state.exists(), "written at start, for `token --state`");
    let old_token = f.token();
    let prod = f.vault_id("Production").await;
    let created = f
        .send(
            Method::POST,
            &format!("/v1/vaults/{prod}/items"),
            &new_login("persisted"),
        )
        .await
        .json();
    let id = created["id"].as_str().expect("id").to_owned();
    f.send(
        Method::PATCH,
        &format!("/v1/vaults/{prod}/items/{id}"),
        &json!([{"op": "replace", "path": "/title", "value": "persisted v2"}]),
    )
    .await;
    let content_version = f.vault(&prod).await["contentVersion"].clone();
    f.stop().await;

    // The seed is not applied again; items, versions and the signing key are back.
    let g = Fixture::with(DevServerOptions {
        seed: Seed::Empty,
        ..opts
    })
    .await;
    let item = g
        .get_as(&format!("/v1/vaults/{prod}/items/{id}"), &old_token)
        .await;
    assert_eq!(
        item.status,
        StatusCode::OK,
        "tokens of the last run still verify"
    );
    let item = item.json();
    assert_eq!(
        (item["title"].clone(), item["version"].clone()),
        (json!("persisted v2"), json!(2))
    );
    assert_eq!(
        field(&item, "password")["value"],
        field(&created, "password")["value"]
    );
    assert_eq!(g.vault(&prod).await["contentVersion"], content_version);
    // Files survive too.
    let tls = g.item_id(&prod, "Web TLS certificate").await;
    let files = g
        .get(&format!("/v1/vaults/{prod}/items/{tls}/files"))
        .await
        .json();
    let path = files[0]["content_path"].as_str().expect("path").to_owned();
    assert_eq!(g.get(&path).await.status, StatusCode::OK);

    // `connect-dev token --state` signs with the same key.
    let minted =
        opsync::connect_dev::mint_from_state(&state, &[("Production".into(), Access::Read)], None)
            .expect("mint from state");
    assert_eq!(
        g.get_as(&format!("/v1/vaults/{prod}"), &minted)
            .await
            .status,
        StatusCode::OK
    );
    let staging = g.vault_id("Staging").await;
    g.get_as(&format!("/v1/vaults/{staging}"), &minted)
        .await
        .error(403);
    assert!(
        opsync::connect_dev::mint_from_state(&state, &[("Nope".into(), Access::Read)], None)
            .is_err()
    );
    g.stop().await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&state)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the state file holds secrets");
    }
}

#[tokio::test]
async fn writes_are_saved_soon_without_a_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let f = Fixture::with(DevServerOptions {
        seed: Seed::Demo,
        state: Some(state.clone()),
        ..DevServerOptions::default()
    })
    .await;
    let prod = f.vault_id("Production").await;
    let created = f
        .send(
            Method::POST,
            &format!("/v1/vaults/{prod}/items"),
            &new_login("autosaved"),
        )
        .await
        .json();
    let id = created["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&state).expect("state file");
        if text.contains(&id) {
            let v: Value = serde_json::from_str(&text).expect("always complete JSON");
            assert_eq!(v["format"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the write was not saved within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f.stop().await;
}

#[tokio::test]
async fn fault_injection() {
    let f = Fixture::start(Seed::Demo).await;
    f.server.set_faults(Duration::ZERO, 1.0);
    let msg = f.get("/v1/vaults").await.error(500);
    assert_eq!(msg, "Something went wrong");
    assert_eq!(
        f.call(Method::GET, "/heartbeat", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        f.call(Method::GET, "/health", None, None).await.status,
        StatusCode::OK
    );

    f.server.set_faults(Duration::ZERO, 0.5);
    let mut failed = 0;
    for _ in 0..200 {
        if f.get("/v1/vaults").await.status == StatusCode::INTERNAL_SERVER_ERROR {
            failed += 1;
        }
    }
    assert!(
        (50..=150).contains(&failed),
        "{failed} of 200 failed at rate 0.5"
    );

    f.server.set_faults(Duration::from_millis(150), 0.0);
    let started = Instant::now();
    assert_eq!(f.get("/v1/vaults").await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let started = Instant::now();
    f.call(Method::GET, "/heartbeat", None, None).await;
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "only /v1 is delayed"
    );
    f.stop().await;

    let g = Fixture::with(DevServerOptions {
        fail_rate: 1.0,
        ..DevServerOptions::default()
    })
    .await;
    g.get("/v1/vaults").await.error(500);
    g.stop().await;
    assert!(
        DevServer::start(DevServerOptions {
            fail_rate: 1.5,
            ..DevServerOptions::default()
        })
        .await
        .is_err()
    );
}

#[tokio::test]
async fn minting_through_the_running_server() {
    let f = Fixture::start(Seed::Demo).await;
    let prod = f.vault_id("Production").await;
    let staging = f.vault_id("Staging").await;
    let fr = &f;
    let mint = |token: String, body: Value| {
        let body = serde_json::to_vec(&body).expect("json");
        async move {
            fr.call(
                Method::POST,
                "/opsync-dev/tokens",
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    let reply = mint(
        f.token(),
        json!({"vaults": [{"vault": "Production", "access": "read"}], "expiresInSeconds": 3600}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let ro = reply.json()["token"].as_str().expect("token").to_owned();
    let claims = decode_unverified(&ro).expect("claims");
    assert_eq!(claims.vts.len(), 1);
    assert_eq!(claims.vts[0].u, prod);
    assert!(claims.exp.is_some_and(|e| e > claims.iat));
    f.get_as(&format!("/v1/vaults/{staging}"), &ro)
        .await
        .error(403);

    // No escalation: a read grant cannot mint write, nor another vault, nor outlive itself.
    mint(
        ro.clone(),
        json!({"vaults": [{"vault": "Production", "access": "readwrite"}], "expiresInSeconds": 60}),
    )
    .await
    .error(403);
    mint(
        ro.clone(),
        json!({"vaults": [{"vault": "Staging", "access": "read"}], "expiresInSeconds": 60}),
    )
    .await
    .error(403);
    mint(
        ro.clone(),
        json!({"vaults": [{"vault": "Production", "access": "read"}]}),
    )
    .await
    .error(403);
    let narrower = mint(
        ro.clone(),
        json!({"vaults": [{"vault": prod, "access": "read"}], "expiresInSeconds": 60}),
    )
    .await;
    assert_eq!(narrower.status, StatusCode::OK);
    mint(
        f.token(),
        json!({"vaults": [{"vault": "Nope", "access": "read"}]}),
    )
    .await
    .error(404);
    mint(f.token(), json!({"vaults": []})).await.error(400);
    mint(
        f.token(),
        json!({"vaults": [{"vault": "Production", "access": "all"}]}),
    )
    .await
    .error(400);
    f.call(Method::POST, "/opsync-dev/tokens", None, Some(b"{}"))
        .await
        .error(401);
    let all = mint(
        f.token(),
        json!({"vaults": [{"vault": "*", "access": "readwrite"}]}),
    )
    .await
    .json();
    let all = decode_unverified(all["token"].as_str().expect("token")).expect("claims");
    assert_eq!(all.vts.len(), 3);
    f.stop().await;
}
