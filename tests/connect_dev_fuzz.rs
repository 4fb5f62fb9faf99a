//! Property test: whatever is thrown at `connect-dev` (paths, filters, bodies, patch documents),
//! it answers with a JSON error or a success, carries the version header, and never panics or
//! drops the connection.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use opsync::connect_dev::{DevServer, DevServerOptions, Seed};

/// Ids a request may name: real ones, a well-formed unknown one, and malformed ones.
struct Ids {
    vault: String,
    item: String,
    file_item: String,
    file: String,
}

fn ids(server: &DevServer, rt: &tokio::runtime::Runtime) -> Ids {
    rt.block_on(async {
        let http = reqwest::Client::new();
        let get = |path: String| {
            let http = http.clone();
            let url = format!("{}{path}", server.base_url());
            let token = server.token().to_owned();
            async move {
                http.get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("answered")
                    .json::<Value>()
                    .await
                    .expect("json")
            }
        };
        let vaults = get("/v1/vaults?filter=name+eq+%22Production%22".into()).await;
        let vault = vaults[0]["id"].as_str().expect("vault").to_owned();
        let items = get(format!("/v1/vaults/{vault}/items")).await;
        let by_title = |t: &str| {
            items
                .as_array()
                .expect("items")
                .iter()
                .find(|i| i["title"] == t)
                .and_then(|i| i["id"].as_str())
                .expect("item")
                .to_owned()
        };
        let item = by_title("Admin Console");
        let file_item = by_title("Web TLS certificate");
        let files = get(format!("/v1/vaults/{vault}/items/{file_item}/files")).await;
        let file = files[0]["id"].as_str().expect("file").to_owned();
        Ids {
            vault,
            item,
            file_item,
            file,
        }
    })
}

fn id_like(real: String) -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(real),
        1 => Just("zzzzzzzzzzzzzzzzzzzzzzzzzz".to_owned()),
        1 => "[a-z0-9]{26}",
        1 => "[A-Za-z0-9_.~-]{0,40}",
        1 => any::<String>().prop_map(|s| percent(&s)),
    ]
    .boxed()
}

/// Percent-encodes everything but unreserved characters.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A path and the methods its route serves.
fn path(ids: &Ids) -> impl Strategy<Value = (String, Vec<Method>)> {
    let v = id_like(ids.vault.clone());
    let i = id_like(ids.item.clone());
    let fi = id_like(ids.file_item.clone());
    let f = id_like(ids.file.clone());
    let slash = prop_oneof![Just(""), Just("/")];
    let get = || vec![Method::GET];
    prop_oneof![
        1 => (slash.clone()).prop_map(move |s| (format!("/v1/vaults{s}"), get())),
        1 => (v.clone(), slash.clone()).prop_map(move |(v, s)| (format!("/v1/vaults/{v}{s}"), get())),
        3 => (v.clone(), slash.clone()).prop_map(|(v, s)| {
            (format!("/v1/vaults/{v}/items{s}"), vec![Method::GET, Method::POST])
        }),
        6 => (v.clone(), i).prop_map(|(v, i)| {
            // DELETE comes only from the occasional random method, so the item mostly survives.
            let methods = vec![Method::GET, Method::PUT, Method::PATCH, Method::PATCH];
            (format!("/v1/vaults/{v}/items/{i}"), methods)
        }),
        1 => (v.clone(), fi.clone())
            .prop_map(move |(v, i)| (format!("/v1/vaults/{v}/items/{i}/files"), get())),
        1 => (v.clone(), fi.clone(), f.clone())
            .prop_map(move |(v, i, f)| (format!("/v1/vaults/{v}/items/{i}/files/{f}"), get())),
        1 => (v, fi, f).prop_map(move |(v, i, f)| {
            (format!("/v1/vaults/{v}/items/{i}/files/{f}/content"), get())
        }),
        1 => Just(("/v1/activity".to_owned(), get())),
        1 => Just(("/opsync-dev/tokens".to_owned(), vec![Method::POST])),
        1 => prop::collection::vec("[a-zA-Z0-9%._~-]{0,12}", 0..6)
            .prop_map(move |segments| (format!("/{}", segments.join("/")), get())),
    ]
}

/// Mostly a method the route serves, sometimes any.
fn request_line(ids: &Ids) -> impl Strategy<Value = (Method, String)> {
    path(ids).prop_flat_map(|(path, methods)| {
        let method = prop_oneof![
            5 => prop::sample::select(methods),
            1 => method(),
        ];
        (method, Just(path))
    })
}

fn filter() -> impl Strategy<Value = String> {
    let attr = prop_oneof![
        prop::sample::select(vec!["title", "tag", "name", "TITLE"]).prop_map(str::to_owned),
        "[a-z]{1,6}",
    ];
    let op = prop_oneof![
        prop::sample::select(vec!["eq", "co", "sw", "EQ"]).prop_map(str::to_owned),
        "[a-z]{1,3}",
    ];
    let value = prop_oneof![
        Just("Admin Console".to_owned()),
        any::<String>(),
        "[a-z' \"\\\\]{0,8}"
    ];
    prop_oneof![
        2 => (attr, op, value).prop_map(|(a, o, v)| format!("{a} {o} \"{v}\"")),
        1 => any::<String>(),
        1 => "[()\"' a-z]{0,30}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        filter().prop_map(|f| {
            let encoded: String = url::form_urlencoded::byte_serialize(f.as_bytes()).collect();
            format!("?filter={encoded}")
        }),
        filter().prop_map(|f| format!("?filter={}", percent(&f))),
        (any::<i64>(), any::<i64>()).prop_map(|(l, o)| format!("?limit={l}&offset={o}")),
        Just("?inline_files=true".to_owned()),
        "\\?[a-z=&%+]{0,20}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        prop_oneof![
            Just("LOGIN"),
            Just("CUSTOM"),
            Just("PASSWORD"),
            Just("OTP"),
            Just("DATE"),
            Just("USERNAME"),
            Just("/fields/password/value"),
            Just("/"),
            Just("replace"),
            Just("add"),
            Just("remove"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("title".to_owned()),
                    Just("category".to_owned()),
                    Just("fields".to_owned()),
                    Just("sections".to_owned()),
                    Just("tags".to_owned()),
                    Just("value".to_owned()),
                    Just("type".to_owned()),
                    Just("purpose".to_owned()),
                    Just("generate".to_owned()),
                    Just("recipe".to_owned()),
                    Just("op".to_owned()),
                    Just("path".to_owned()),
                    Just("vaults".to_owned()),
                    "[a-zA-Z]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn patch_document() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        prop::sample::select(vec!["add", "remove", "replace", "move"]).prop_map(str::to_owned),
        "[a-z]{0,7}",
    ];
    let path = prop_oneof![
        Just("/title".to_owned()),
        Just("/tags/-".to_owned()),
        Just("/tags/0".to_owned()),
        Just("/fields".to_owned()),
        Just("/fields/password/value".to_owned()),
        Just("/fields/password".to_owned()),
        Just("/fields/username/section/id".to_owned()),
        Just("/sections/-".to_owned()),
        Just("/".to_owned()),
        Just("/version".to_owned()),
        "(/[a-z0-9~-]{0,8}){0,4}",
        any::<String>(),
    ];
    let one = (op, path, prop::option::of(json_value())).prop_map(|(op, path, value)| {
        let mut obj = json!({"op": op, "path": path});
        if let Some(v) = value {
            obj["value"] = v;
        }
        obj
    });
    let plausible = prop_oneof![
        any::<String>().prop_map(|t| json!({"op": "replace", "path": "/title", "value": t})),
        any::<String>().prop_map(|t| json!({"op": "add", "path": "/tags/-", "value": t})),
        any::<String>().prop_map(|v| json!({"op": "replace", "path": "/fields/password/value", "value": v})),
        Just(json!({"op": "replace", "path": "/fields/password/generate", "value": true})),
        (any::<String>(), any::<String>()).prop_map(|(l, v)| {
            json!({"op": "add", "path": "/fields", "value": {"label": l, "type": "STRING", "value": v}})
        }),
        any::<bool>().prop_map(|b| json!({"op": "replace", "path": "/favorite", "value": b})),
        Just(json!({"op": "remove", "path": "/tags/0"})),
    ];
    prop_oneof![
        prop::collection::vec(one, 0..5),
        prop::collection::vec(plausible, 0..4),
    ]
    .prop_map(Value::Array)
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        2 => json_value().prop_map(|v| Some(serde_json::to_vec(&v).expect("json"))),
        2 => patch_document().prop_map(|v| Some(serde_json::to_vec(&v).expect("json"))),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        3 => Just(Method::GET),
        1 => Just(Method::POST),
        1 => Just(Method::PUT),
        2 => Just(Method::PATCH),
        1 => Just(Method::DELETE),
        1 => Just(Method::OPTIONS),
    ]
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

#[test]
fn any_request_gets_a_json_answer() {
    let rt = runtime();
    let server = rt
        .block_on(DevServer::start(DevServerOptions {
            seed: Seed::Demo,
            ..DevServerOptions::default()
        }))
        .expect("server starts");
    let ids = ids(&server, rt);
    let http = reqwest::Client::new();
    let base = server.base_url();
    let token = server.token().to_owned();
    let strategy = (
        request_line(&ids),
        query(),
        body(),
        prop::bool::weighted(0.9),
    );
    let mut runner = TestRunner::new(Config {
        cases: 600,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |((method, path), query, body, with_token)| {
        let url = format!("{base}{path}{query}");
        let mut request = http.request(method.clone(), &url);
        if with_token {
            request = request.bearer_auth(&token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let (status, headers, bytes) = rt.block_on(async {
            let response = request.send().await;
            let response =
                response.map_err(|e| TestCaseError::fail(format!("{method} {url}: {e}")))?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| TestCaseError::fail(format!("{method} {url}: body: {e}")))?;
            Ok::<_, TestCaseError>((status, headers, bytes))
        })?;
        prop_assert!(
            headers.contains_key("1password-connect-version"),
            "{method} {url}: no version header"
        );
        prop_assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{} {}: {}",
            method,
            url,
            String::from_utf8_lossy(&bytes)
        );
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if status.is_success() {
            if status == StatusCode::NO_CONTENT {
                prop_assert!(bytes.is_empty());
            } else if content_type == "application/json" {
                prop_assert!(
                    serde_json::from_slice::<Value>(&bytes).is_ok(),
                    "{method} {url}: bad JSON"
                );
            } else {
                prop_assert!(path.ends_with("/content"), "{method} {url}: {content_type}");
            }
        } else {
            prop_assert_eq!(
                content_type.as_str(),
                "application/json",
                "{} {}",
                method,
                url
            );
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("{method} {url}: error not JSON: {e}")))?;
            prop_assert_eq!(
                &body["status"],
                &json!(status.as_u16()),
                "{} {}: {}",
                method,
                url,
                body
            );
            prop_assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{method} {url}: {body}"
            );
        }
        Ok(())
    });
    rt.block_on(server.shutdown());
    if let Err(e) = result {
        panic!("{e}");
    }
}
