//! Proves the fake GitLab REST API (tests/gitlab_fake) against an outside client: python-gitlab
//! (tests/gitlab_fake/prove.py) drives projects, groups and their CI/CD variables, then direct
//! requests pin down its pagination headers, validation messages, auth answers and rate limit.

mod gitlab_fake;
mod venv;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gitlab_fake::{GitLabFake, Role, Scope};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// The project and group the clients work in, a project they may not see, and their tokens.
const PROJECT: u64 = 42;
const PROJECT_PATH: &str = "team/app";
const HIDDEN_PROJECT: u64 = 43;
const GROUP: u64 = 7;
const GROUP_PATH: &str = "team";
const MAINTAINER: &str = "glpat-maintainer";
const DEVELOPER: &str = "glpat-developer";
const REVOKED: &str = "glpat-revoked";
const EXPIRED: &str = "glpat-expired";

const KEY_FORMAT: &str = "can contain only letters, digits and '_'.";
const CONFLICT: &str =
    "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'";

/// A fake with the project, the group, and tokens of every kind: the Maintainer of every
/// project owns the group and cannot see the hidden project.
async fn fake() -> GitLabFake {
    let fake = GitLabFake::start().await;
    fake.add_group(GROUP, GROUP_PATH);
    fake.add_project(PROJECT, PROJECT_PATH);
    fake.add_project(HIDDEN_PROJECT, "other/secret");
    fake.add_token(MAINTAINER, Role::Maintainer);
    fake.grant(MAINTAINER, Scope::Group(GROUP), Role::Owner);
    fake.grant(MAINTAINER, Scope::Project(HIDDEN_PROJECT), Role::NoAccess);
    fake.add_token(DEVELOPER, Role::Developer);
    fake.add_token(REVOKED, Role::Maintainer);
    fake.revoke_token(REVOKED);
    fake.add_token(EXPIRED, Role::Maintainer);
    fake.expire_token(EXPIRED);
    fake
}

/// Runs one phase of prove.py against `fake` and returns its observations.
async fn run_prove(fake: &GitLabFake, phase: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gitlab_fake/prove.py");
    let output = tokio::process::Command::new(venv::python_with(
        "gitlab",
        "python-gitlab (PyPI python-gitlab)",
    ))
    .arg(script)
    .args([&fake.url(), phase, MAINTAINER, DEVELOPER, REVOKED, EXPIRED])
    .args([
        &PROJECT.to_string(),
        PROJECT_PATH,
        &GROUP.to_string(),
        GROUP_PATH,
    ])
    .output()
    .await
    .expect("run prove.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "prove.py {phase} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("prove.py printed no JSON ({e}): {stdout}"))
}

fn check_main_observations(seen: &Value) {
    assert_eq!(
        seen["project"],
        json!({"id": PROJECT, "name": "app", "namespace": GROUP_PATH})
    );
    assert_eq!(seen["missing_project"], "404 Project Not Found");
    assert_eq!(
        seen["created"],
        json!({
            "key": "DB_PASSWORD", "value": "s3cr3t-Passw0rd", "variable_type": "env_var",
            "protected": true, "masked": true, "hidden": false, "raw": false,
            "environment_scope": "production", "description": "the production database",
        })
    );
    assert_eq!(
        seen["hidden"]["value"],
        Value::Null,
        "a hidden value is not shown"
    );
    assert_eq!(seen["hidden"]["hidden"], true);
    assert_eq!(seen["hidden"]["masked"], true);

    let mut keys = vec![
        "DB_PASSWORD",
        "DB_PASSWORD",
        "TLS_CERT",
        "RAW_MASKED",
        "HIDDEN",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    keys.extend((0..22).map(|i| format!("BULK_{i:02}")));
    assert_eq!(
        seen["listed_keys"],
        json!(keys),
        "get_all follows the Link header"
    );
    assert_eq!(
        seen["iterator"],
        json!({"total": 27, "total_pages": 2, "per_page": 20, "count": 27})
    );
    assert_eq!(seen["page_2_of_10"], json!(keys[10..20]));

    assert_eq!(seen["conflict"], CONFLICT);
    assert_eq!(seen["staging_value"], "staging-pass-1234");
    assert_eq!(seen["updated"]["value"], "n3w-Passw0rd-2024");
    assert_eq!(seen["updated"]["environment_scope"], "production");
    assert_eq!(seen["updated"]["description"], "the production database");
    assert_eq!(
        seen["unmask_hidden"],
        json!({"base": ["The visibility setting cannot be changed for masked and hidden variables."]})
    );

    let invalid = json!({"value": ["is invalid"]});
    assert_eq!(
        seen["refusals"],
        json!({
            "too_short": invalid,
            "space": invalid,
            "dollar_expanded": invalid,
            "newline_raw": invalid,
            "duplicate": {"key": ["(DB_PASSWORD) has already been taken"]},
            "bad_key": {"key": [KEY_FORMAT]},
            "long_key": {"key": ["is too long (maximum is 255 characters)"]},
        })
    );
    assert_eq!(seen["missing_value"], "value is missing");
    assert_eq!(seen["deleted"], "404 Variable Not Found");
    assert_eq!(seen["after_delete"], "production");

    assert_eq!(seen["group_projects"], json!([PROJECT_PATH]));
    assert_eq!(
        seen["group_variables"],
        json!([{
            "key": "GROUP_TOKEN", "value": "gr0up-t0ken-review", "variable_type": "env_var",
            "protected": true, "masked": false, "hidden": false, "raw": false,
            "environment_scope": "review/*", "description": null,
        }])
    );
    assert_eq!(seen["bearer_keys"], 25);
    assert_eq!(seen["developer"], "403 Forbidden");
    assert_eq!(
        seen["revoked"],
        json!({"error": "invalid_token",
               "error_description": "Token was revoked. You have to re-authorize from the user."})
    );
    assert_eq!(
        seen["expired"],
        json!({"error": "invalid_token",
               "error_description": "Token is expired. You can either do re-authorization or token refresh."})
    );
    assert_eq!(seen["unknown"], json!({"message": "401 Unauthorized"}));
}

/// python-gitlab drives the fake, then the fake's own view of what it did; then the client
/// meets the rate limit, is refused, and waits `Retry-After` itself.
#[tokio::test(flavor = "multi_thread")]
async fn python_gitlab_drives_the_fake() {
    let fake = fake().await;
    let seen = run_prove(&fake, "main").await;
    check_main_observations(&seen);

    let project = Scope::Project(PROJECT);
    let production = fake
        .variable(project, "DB_PASSWORD", "production")
        .expect("DB_PASSWORD in production");
    assert_eq!(production["value"], "n3w-Passw0rd-2024");
    assert_eq!(production["protected"], true);
    assert!(fake.variable(project, "DB_PASSWORD", "staging").is_none());
    let hidden = fake.variable(project, "HIDDEN", "*").expect("HIDDEN");
    assert_eq!(
        hidden["value"], "hidden-value-123",
        "the fake shows tests what the API hides"
    );
    assert_eq!(fake.variables(project).len(), 25);
    assert_eq!(fake.variables(Scope::Group(GROUP)).len(), 1);

    let requests = fake.requests();
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.path == "/api/v4/projects/42/variables"
            && r.query.contains("page=2")
            && r.status == 200),
        "get_all fetched the second page: {requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.method == "DELETE"
            && r.query == "filter%5Benvironment_scope%5D=staging"
            && r.status == 204),
        "the delete carried its filter: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/api/v4/projects/team%2Fapp" && r.status == 200),
        "the project was read by its path: {requests:?}"
    );

    fake.reset_requests();
    fake.set_rate_limit(2, Duration::from_secs(2));
    let seen = run_prove(&fake, "throttled").await;
    assert_eq!(seen["throttled"], "Retry later\n");
    assert_eq!(seen["after_wait"], PROJECT);
    let waited = seen["waited"].as_f64().expect("seconds waited");
    assert!(
        (0.9..5.0).contains(&waited),
        "python-gitlab waited Retry-After: {waited} s"
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 429, 429, 429, 200]);
}

/// A reqwest client with a token, against one fake.
struct Api {
    http: reqwest::Client,
    base: String,
}

/// One answer: status, headers, and the body as JSON (text as a JSON string, empty as null).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .expect("a text header")
    }
}

impl Api {
    fn new(fake: &GitLabFake) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: fake.api_url(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("PRIVATE-TOKEN", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, Some(MAINTAINER), None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call("POST", path, Some(MAINTAINER), Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call("PUT", path, Some(MAINTAINER), Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, Some(MAINTAINER), None).await
    }
}

const VARIABLES: &str = "/projects/42/variables";

fn link(api: &GitLabFake, id: &str, page: u32, per_page: u32, rel: &str) -> String {
    format!(
        "<{}/projects/{id}/variables?id={id}&page={page}&per_page={per_page}>; rel=\"{rel}\"",
        api.api_url()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_headers_and_links() {
    let fake = fake().await;
    for i in 0..45 {
        fake.insert_variable(
            Scope::Project(PROJECT),
            json!({"key": format!("VAR_{i:02}"), "value": format!("{i}")}),
        );
    }
    let api = Api::new(&fake);

    let first = api.get(VARIABLES).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body.as_array().expect("a list").len(), 20);
    assert_eq!(first.body[0]["key"], "VAR_00");
    assert_eq!(first.header("X-Page"), "1");
    assert_eq!(first.header("X-Per-Page"), "20");
    assert_eq!(first.header("X-Total"), "45");
    assert_eq!(first.header("X-Total-Pages"), "3");
    assert_eq!(first.header("X-Next-Page"), "2");
    assert_eq!(first.header("X-Prev-Page"), "");
    assert_eq!(
        first.header("Link"),
        [
            link(&fake, "42", 2, 20, "next"),
            link(&fake, "42", 1, 20, "first"),
            link(&fake, "42", 3, 20, "last"),
        ]
        .join(", ")
    );

    let last = api.get(&format!("{VARIABLES}?page=3")).await;
    assert_eq!(last.body.as_array().expect("a list").len(), 5);
    assert_eq!(last.body[4]["key"], "VAR_44");
    assert_eq!(last.header("X-Next-Page"), "");
    assert_eq!(last.header("X-Prev-Page"), "2");
    assert_eq!(
        last.header("Link"),
        [
            link(&fake, "42", 2, 20, "prev"),
            link(&fake, "42", 1, 20, "first"),
            link(&fake, "42", 3, 20, "last"),
        ]
        .join(", ")
    );

    let middle = api.get(&format!("{VARIABLES}?page=2&per_page=10")).await;
    assert_eq!(middle.body[0]["key"], "VAR_10");
    assert_eq!(middle.header("X-Total-Pages"), "5");
    assert_eq!(middle.header("X-Prev-Page"), "1");
    assert_eq!(middle.header("X-Next-Page"), "3");

    let capped = api.get(&format!("{VARIABLES}?per_page=500")).await;
    assert_eq!(capped.body.as_array().expect("a list").len(), 45);
    assert_eq!(capped.header("X-Per-Page"), "100");
    assert_eq!(capped.header("X-Total-Pages"), "1");
    assert!(capped.header("Link").contains("per_page=500"));

    let beyond = api.get(&format!("{VARIABLES}?page=9")).await;
    assert_eq!(beyond.status, 200);
    assert_eq!(beyond.body, json!([]));
    assert_eq!(beyond.header("X-Page"), "9");
    assert_eq!(beyond.header("X-Prev-Page"), "");
    assert_eq!(beyond.header("X-Next-Page"), "");

    let by_path = api.get("/projects/team%2Fapp/variables").await;
    assert_eq!(by_path.header("X-Total"), "45");
    assert!(
        by_path
            .header("Link")
            .starts_with(&link(&fake, "team%2Fapp", 2, 20, "next")),
        "{}",
        by_path.header("Link")
    );

    let empty = api.get("/groups/7/variables").await;
    assert_eq!(empty.body, json!([]));
    assert_eq!(empty.header("X-Total"), "0");
    assert_eq!(empty.header("X-Total-Pages"), "1");

    let bad = api.get(&format!("{VARIABLES}?page=abc&per_page=x")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body,
        json!({"error": "page is invalid, per_page is invalid"})
    );
}

/// POSTs `body` and expects 400 with the `{"message": {...}}` `errors`.
async fn refused(api: &Api, body: Value, errors: Value) {
    let answer = api.post(VARIABLES, body.clone()).await;
    assert_eq!(answer.status, 400, "{body}: {}", answer.body);
    assert_eq!(answer.body, json!({ "message": errors }), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_matches_gitlab() {
    let fake = fake().await;
    let api = Api::new(&fake);

    refused(
        &api,
        json!({"key": "BAD KEY", "value": "x"}),
        json!({"key": [KEY_FORMAT]}),
    )
    .await;
    refused(
        &api,
        json!({"key": "", "value": "x"}),
        json!({"key": ["can't be blank", KEY_FORMAT]}),
    )
    .await;
    refused(
        &api,
        json!({"key": "K-".repeat(128), "value": "x"}),
        json!({"key": ["is too long (maximum is 255 characters)", KEY_FORMAT]}),
    )
    .await;
    let longest = api
        .post(VARIABLES, json!({"key": "K".repeat(255), "value": "x"}))
        .await;
    assert_eq!(
        longest.status, 201,
        "255 characters is a key: {}",
        longest.body
    );
    refused(
        &api,
        json!({"key": "SCOPED", "value": "x", "environment_scope": "prod#1"}),
        json!({"environment_scope": [
            "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', '*' and spaces"
        ]}),
    )
    .await;
    refused(
        &api,
        json!({"key": "DESCRIBED", "value": "x", "description": "d".repeat(256)}),
        json!({"description": ["is too long (maximum is 255 characters)"]}),
    )
    .await;

    // Grape's own parameter errors.
    let missing = api.post(VARIABLES, json!({})).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.body,
        json!({"error": "key is missing, value is missing"})
    );
    let bad_flag = api
        .post(
            VARIABLES,
            json!({"key": "K", "value": "v", "masked": "maybe"}),
        )
        .await;
    assert_eq!(bad_flag.body, json!({"error": "masked is invalid"}));
    let bad_type = api
        .post(
            VARIABLES,
            json!({"key": "K", "value": "v", "variable_type": "secret"}),
        )
        .await;
    assert_eq!(
        bad_type.body,
        json!({"error": "variable_type does not have a valid value"})
    );

    // Masking: expanded values are Base64 (RFC 4648, both alphabets) plus @ : . ~; raw values
    // anything but whitespace; both at least 8 characters.
    let cases = [
        ("abcdefgh", false, true),
        ("abcdefg", false, false),
        ("QUJD+/=_-@:.~xyz", false, true),
        ("has a space", false, false),
        ("dollar$sign", false, false),
        ("p@ss!word#%", false, false),
        ("ümlautxyz", false, false),
        ("dollar$sign", true, true),
        ("p@ss!word#%", true, true),
        ("ümlautxyz", true, true),
        ("tab\tinside", true, false),
        ("line-one\nline-two", true, false),
        ("1234567", true, false),
    ];
    for (i, (value, raw, ok)) in cases.into_iter().enumerate() {
        let answer = api
            .post(
                VARIABLES,
                json!({"key": format!("MASKED_{i}"), "value": value, "masked": true, "raw": raw}),
            )
            .await;
        if ok {
            assert_eq!(
                answer.status, 201,
                "{value:?} raw={raw} is maskable: {}",
                answer.body
            );
            assert_eq!(answer.body["value"], value);
        } else {
            assert_eq!(answer.status, 400, "{value:?} raw={raw} is not maskable");
            assert_eq!(answer.body, json!({"message": {"value": ["is invalid"]}}));
        }
    }

    // Masking an existing variable re-checks its value; so does changing a masked one.
    api.post(VARIABLES, json!({"key": "PLAIN", "value": "short"}))
        .await;
    let mask = api
        .put(&format!("{VARIABLES}/PLAIN"), json!({"masked": true}))
        .await;
    assert_eq!(mask.body, json!({"message": {"value": ["is invalid"]}}));
    let both = api
        .put(
            &format!("{VARIABLES}/PLAIN"),
            json!({"masked": true, "value": "long-enough"}),
        )
        .await;
    assert_eq!(both.status, 200, "{}", both.body);
    assert_eq!(both.body["masked"], true);

    // Hidden: the value never comes back, masking cannot change.
    let hidden = api
        .post(
            VARIABLES,
            json!({"key": "SECRET", "value": "hidden-value", "masked_and_hidden": true}),
        )
        .await;
    assert_eq!(hidden.status, 201);
    assert_eq!(hidden.body["value"], Value::Null);
    assert_eq!(hidden.body["hidden"], true);
    assert_eq!(
        fake.variable(Scope::Project(PROJECT), "SECRET", "*")
            .expect("SECRET")["value"],
        "hidden-value"
    );
    let new_value = api
        .put(
            &format!("{VARIABLES}/SECRET"),
            json!({"value": "another-hidden"}),
        )
        .await;
    assert_eq!(new_value.status, 200);
    assert_eq!(new_value.body["value"], Value::Null);

    // Forms (curl --data) and multipart (curl --form, as GitLab's docs write it) work too.
    let form = api
        .send(
            api.http
                .post(api.url(VARIABLES))
                .header("PRIVATE-TOKEN", MAINTAINER)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("key=FROM_FORM&value=a+b%26c&protected=true&environment_scope=review%2F*"),
        )
        .await;
    assert_eq!(form.status, 201, "{}", form.body);
    assert_eq!(form.body["value"], "a b&c");
    assert_eq!(form.body["protected"], true);
    assert_eq!(form.body["environment_scope"], "review/*");
    let boundary = "------------------------fakeboundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nFROM_MULTIPART\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"value\"\r\n\r\nline 1\r\nline 2\r\n\
         --{boundary}--\r\n"
    );
    let multipart = api
        .send(
            api.http
                .post(api.url(VARIABLES))
                .header("PRIVATE-TOKEN", MAINTAINER)
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(multipart),
        )
        .await;
    assert_eq!(multipart.status, 201, "{}", multipart.body);
    assert_eq!(multipart.body["value"], "line 1\r\nline 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_scopes_and_filters() {
    let fake = fake().await;
    let api = Api::new(&fake);
    for scope in ["production", "staging"] {
        let created = api
            .post(
                VARIABLES,
                json!({"key": "API_KEY", "value": format!("{scope}-key"), "environment_scope": scope}),
            )
            .await;
        assert_eq!(created.status, 201);
    }
    let duplicate = api
        .post(
            VARIABLES,
            json!({"key": "API_KEY", "value": "again", "environment_scope": "staging"}),
        )
        .await;
    assert_eq!(
        duplicate.body,
        json!({"message": {"key": ["(API_KEY) has already been taken"]}})
    );

    let path = format!("{VARIABLES}/API_KEY");
    let conflict = json!({ "message": CONFLICT });
    for answer in [
        api.get(&path).await,
        api.put(&path, json!({"value": "x"})).await,
        api.delete(&path).await,
    ] {
        assert_eq!(answer.status, 409);
        assert_eq!(answer.body, conflict);
    }

    let staging = format!("{path}?filter%5Benvironment_scope%5D=staging");
    assert_eq!(api.get(&staging).await.body["value"], "staging-key");
    let to_review = api
        .put(
            &staging,
            json!({"environment_scope": "review/*", "value": "review-key"}),
        )
        .await;
    assert_eq!(to_review.status, 200);
    assert_eq!(to_review.body["environment_scope"], "review/*");
    let clash = api
        .put(
            &format!("{path}?filter[environment_scope]=review/*"),
            json!({"environment_scope": "production"}),
        )
        .await;
    assert_eq!(
        clash.body,
        json!({"message": {"key": ["(API_KEY) has already been taken"]}})
    );

    let filtered_body = api
        .call(
            "DELETE",
            &path,
            Some(MAINTAINER),
            Some(json!({"filter": {"environment_scope": "review/*"}})),
        )
        .await;
    assert_eq!(filtered_body.status, 204);
    assert_eq!(filtered_body.body, Value::Null);
    let gone = api
        .get(&format!("{path}?filter[environment_scope]=review/*"))
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body, json!({"message": "404 Variable Not Found"}));
    let only = api.get(&path).await;
    assert_eq!(only.body["environment_scope"], "production");

    // Group variables have scopes too (Premium).
    let group = api
        .post(
            "/groups/team/variables",
            json!({"key": "API_KEY", "value": "group-key", "environment_scope": "staging"}),
        )
        .await;
    assert_eq!(group.status, 201);
    assert_eq!(
        fake.variable(Scope::Group(GROUP), "API_KEY", "staging")
            .expect("API_KEY")["value"],
        "group-key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_and_roles() {
    let fake = fake().await;
    let api = Api::new(&fake);
    let unauthorized = json!({"message": "401 Unauthorized"});

    let anonymous = api.call("GET", VARIABLES, None, None).await;
    assert_eq!((anonymous.status, &anonymous.body), (401, &unauthorized));
    let anonymous_project = api.call("GET", "/projects/42", None, None).await;
    assert_eq!(
        anonymous_project.status, 404,
        "private to anonymous readers"
    );
    assert_eq!(
        anonymous_project.body,
        json!({"message": "404 Project Not Found"})
    );
    let unknown = api
        .call("GET", "/projects/42", Some("glpat-nobody"), None)
        .await;
    assert_eq!((unknown.status, &unknown.body), (401, &unauthorized));

    let revoked = api.call("GET", VARIABLES, Some(REVOKED), None).await;
    assert_eq!(revoked.status, 401);
    assert_eq!(
        revoked.body["error_description"],
        "Token was revoked. You have to re-authorize from the user."
    );
    assert!(revoked.header("WWW-Authenticate").contains("invalid_token"));
    let expired = api.call("GET", "/projects/42", Some(EXPIRED), None).await;
    assert_eq!(expired.body["error"], "invalid_token");

    let developer = api.call("GET", "/projects/42", Some(DEVELOPER), None).await;
    assert_eq!(developer.status, 200);
    let forbidden = api.call("GET", VARIABLES, Some(DEVELOPER), None).await;
    assert_eq!(
        (forbidden.status, &forbidden.body),
        (403, &json!({"message": "403 Forbidden"}))
    );

    // A group's variables are its Owner's.
    fake.add_token("glpat-group-maintainer", Role::Maintainer);
    let maintainer = api
        .call(
            "GET",
            "/groups/7/variables",
            Some("glpat-group-maintainer"),
            None,
        )
        .await;
    assert_eq!(maintainer.status, 403);
    let owner = api.get("/groups/7/variables").await;
    assert_eq!(owner.status, 200);
    let group = api.get("/groups/team").await;
    assert_eq!(group.body["id"], GROUP);
    assert_eq!(group.body["full_path"], GROUP_PATH);

    // Not a member: 404, as for a project that does not exist.
    for path in [
        "/projects/43",
        "/projects/43/variables",
        "/projects/other%2Fsecret",
    ] {
        let hidden = api.get(path).await;
        assert_eq!(hidden.status, 404, "{path}");
        assert_eq!(hidden.body, json!({"message": "404 Project Not Found"}));
    }
    let no_group = api.get("/groups/99/variables").await;
    assert_eq!(no_group.body, json!({"message": "404 Group Not Found"}));

    // The other ways to send a token.
    let bearer = api
        .send(
            api.http
                .get(api.url(VARIABLES))
                .header("Authorization", format!("Bearer {MAINTAINER}")),
        )
        .await;
    assert_eq!(bearer.status, 200);
    let query = api
        .call(
            "GET",
            &format!("{VARIABLES}?private_token={MAINTAINER}"),
            None,
            None,
        )
        .await;
    assert_eq!(query.status, 200);

    // Paths and methods no endpoint serves.
    for (method, path) in [
        ("GET", "/projects/42/hooks"),
        ("PATCH", "/projects/42/variables/KEY"),
        ("GET", "/users"),
    ] {
        let answer = api.call(method, path, Some(MAINTAINER), None).await;
        assert_eq!(answer.status, 404, "{method} {path}");
        assert_eq!(answer.body, json!({"error": "404 Not Found"}));
    }
    let outside = api
        .send(api.http.get(format!("{}/projects/42", fake.url())))
        .await;
    assert_eq!(outside.status, 404, "the API is under /api/v4");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_headers() {
    let fake = fake().await;
    let api = Api::new(&fake);
    let plain = api.get("/projects/42").await;
    assert!(
        plain.headers.get("RateLimit-Limit").is_none(),
        "no limit, no headers"
    );

    fake.set_rate_limit(3, Duration::from_secs(60));
    let started = now();
    for observed in 1..=3u64 {
        let answer = api.get(VARIABLES).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("RateLimit-Name"),
            "throttle_authenticated_api"
        );
        assert_eq!(answer.header("RateLimit-Limit"), "3");
        assert_eq!(answer.header("RateLimit-Observed"), observed.to_string());
        assert_eq!(
            answer.header("RateLimit-Remaining"),
            (3 - observed).to_string()
        );
        let reset: u64 = answer.header("RateLimit-Reset").parse().expect("Unix time");
        assert!(
            (started + 59..=started + 62).contains(&reset),
            "reset {reset} a minute after {started}"
        );
        assert!(answer.headers.get("Retry-After").is_none());
    }

    let throttled = api.get(VARIABLES).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.body, "Retry later\n");
    assert_eq!(throttled.header("Content-Type"), "text/plain");
    assert_eq!(throttled.header("RateLimit-Observed"), "4");
    assert_eq!(throttled.header("RateLimit-Remaining"), "0");
    let retry_after: u64 = throttled.header("Retry-After").parse().expect("seconds");
    assert!(
        (55..=60).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let reset: i64 = throttled
        .header("RateLimit-Reset")
        .parse()
        .expect("Unix time");
    let reset_time = chrono::DateTime::parse_from_rfc2822(throttled.header("RateLimit-ResetTime"))
        .expect("an HTTP date");
    assert_eq!(reset_time.timestamp(), reset);
    assert!(throttled.header("RateLimit-ResetTime").ends_with(" GMT"));
    // Every request counts, whoever sends it; anonymous ones are named so.
    let anonymous = api.call("GET", "/projects/42", None, None).await;
    assert_eq!(anonymous.status, 429);
    assert_eq!(
        anonymous.header("RateLimit-Name"),
        "throttle_unauthenticated_api"
    );

    // The limit per minute is rounded up from other windows.
    fake.set_rate_limit(10, Duration::from_secs(3600));
    assert_eq!(api.get(VARIABLES).await.header("RateLimit-Limit"), "1");
    fake.set_rate_limit(5, Duration::from_secs(1));
    assert_eq!(api.get(VARIABLES).await.header("RateLimit-Limit"), "300");

    fake.clear_rate_limit();
    let after = api.get(VARIABLES).await;
    assert_eq!(after.status, 200);
    assert!(after.headers.get("RateLimit-Remaining").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn inspection_and_seeding() {
    let fake = fake().await;
    let api = Api::new(&fake);
    let project = Scope::Project(PROJECT);

    fake.set_variable(project, "EDITED", "*", "first");
    fake.set_variable(project, "EDITED", "production", "prod");
    fake.set_variable(project, "EDITED", "*", "second");
    assert_eq!(fake.variables(project).len(), 2);
    assert_eq!(
        fake.variable(project, "EDITED", "*").expect("EDITED")["value"],
        "second"
    );
    let read = api
        .get(&format!(
            "{VARIABLES}/EDITED?filter[environment_scope]=production"
        ))
        .await;
    assert_eq!(read.body["value"], "prod");

    let inserted = fake.insert_variable(
        project,
        json!({"key": "SEEDED", "value": "seeded-value", "masked": true, "protected": true,
               "variable_type": "file", "description": "from a test"}),
    );
    assert_eq!(inserted["variable_type"], "file");
    assert_eq!(inserted["protected"], true);

    assert!(fake.delete_variable(project, "EDITED", "production"));
    assert!(!fake.delete_variable(project, "EDITED", "production"));
    assert_eq!(
        api.get(&format!("{VARIABLES}/EDITED")).await.body["value"],
        "second",
        "one EDITED left: no filter needed"
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/api/v4/projects/42/variables/EDITED");
    assert_eq!(requests[0].query, "filter[environment_scope]=production");
    assert_eq!(requests[0].status, 200);
    fake.reset_requests();
    assert!(fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
#[should_panic(expected = "is invalid")]
async fn a_ui_edit_gitlab_would_refuse_panics() {
    let fake = fake().await;
    let project = Scope::Project(PROJECT);
    fake.insert_variable(
        project,
        json!({"key": "MASKED", "value": "maskable-value", "masked": true}),
    );
    fake.set_variable(project, "MASKED", "*", "no good");
}
