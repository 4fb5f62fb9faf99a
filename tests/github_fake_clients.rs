//! Proves the fake GitHub API (tests/github_fake) against outside clients: PyGithub
//! (tests/github_fake/prove.py) writes secrets that PyNaCl then opens and meets both rate limits;
//! raw requests pin down the protocol: sealed writes, name and size rules, keys, access, rate
//! limit headers, and GitHub App JWTs exchanged for installation tokens.

mod github_fake;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use github_fake::{GitHubFake, Grant, MAX_PLAINTEXT, SEAL_OVERHEAD, Scope, venv};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const ORG: &str = "octo-org";
const REPO: &str = "octo-org/hello";
const OTHER_REPO: &str = "octo-org/other";
const ENV: &str = "production";
const TOKEN: &str = "ghp_prover";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Runs prove.py in `mode` against `fake` and returns its observations.
async fn prove(fake: &GitHubFake, repo_id: u64, mode: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/github_fake/prove.py");
    let args = [
        fake.url(),
        TOKEN.to_owned(),
        REPO.to_owned(),
        ENV.to_owned(),
        ORG.to_owned(),
        repo_id.to_string(),
        mode.to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(venv::python_with("github, nacl", "PyGithub and PyNaCl"))
            .arg(script)
            .args(args)
            .output()
            .expect("run prove.py")
    })
    .await
    .expect("prove.py's thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "prove.py {mode} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("prove.py {mode} printed no JSON ({e}): {stdout}"))
}

/// A fake with the org, the repository (and another one of the org), its environment, and the
/// prover's token over both repositories and the org. Returns the repository ids.
fn seeded(fake: &GitHubFake) -> (u64, u64) {
    fake.add_org(ORG);
    let repo_id = fake.add_repo(REPO);
    let other_id = fake.add_repo(OTHER_REPO);
    fake.add_environment(REPO, ENV);
    fake.add_token(
        TOKEN,
        &[Grant::Repo(REPO), Grant::Repo(OTHER_REPO), Grant::Org(ORG)],
    );
    (repo_id, other_id)
}

/// One answer: status, headers, JSON body (`Null` when empty).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

/// Raw requests to the fake, as a plugin makes them.
struct Api {
    http: reqwest::Client,
    base: String,
    authorization: Option<String>,
}

impl Api {
    fn new(fake: &GitHubFake, token: &str) -> Self {
        Self::with_authorization(fake, Some(format!("Bearer {token}")))
    }

    fn with_authorization(fake: &GitHubFake, authorization: Option<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: fake.url(),
            authorization,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "opsync-github-fake-test");
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Seals `plaintext` for the key `public-key` answers under `secrets` (a `.../secrets` path)
    /// and PUTs it as `name`.
    async fn put_sealed(
        &self,
        fake: &GitHubFake,
        secrets: &str,
        name: &str,
        plaintext: &[u8],
    ) -> Answer {
        let key = self.get(&format!("{secrets}/public-key")).await;
        assert_eq!(key.status, 200, "public key of {secrets}: {}", key.body);
        let sealed = fake.seal(key.body["key"].as_str().expect("a key"), plaintext);
        let body = json!({"encrypted_value": sealed, "key_id": key.body["key_id"]});
        self.put(&format!("{secrets}/{name}"), body).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pygithub_writes_secrets_that_pynacl_opens() {
    let fake = GitHubFake::start().await;
    let (repo_id, _) = seeded(&fake);

    let seen = prove(&fake, repo_id, "secrets").await;
    assert_eq!(seen["owner_type"], "Organization");
    assert_eq!(seen["environment"], ENV);
    assert_eq!(seen["org_login"], ORG);
    assert_eq!(seen["repo_secrets"], json!(["API_TOKEN", "DB_PASSWORD"]));
    assert_eq!(seen["paged_total"], 2, "total_count of a page of one");
    assert_eq!(
        seen["paged_names"],
        json!(["API_TOKEN", "DB_PASSWORD"]),
        "PyGithub followed the Link header, one secret a page"
    );
    assert_eq!(seen["environment_secrets"], json!(["DEPLOY_KEY"]));
    assert_eq!(seen["dependabot_secrets"], json!(["DEP_TOKEN"]));
    assert_eq!(seen["org_secrets"], json!([["ORG_SHARED", "selected"]]));
    assert_eq!(seen["org_selected"], json!([REPO]));
    assert_eq!(seen["db_name"], "DB_PASSWORD");
    assert_eq!(seen["deleted_again"], false, "a second DELETE is 404");
    assert_eq!(seen["not_found"], "Not Found");
    assert_eq!(seen["missing_status"], 404);
    assert_eq!(
        seen["github_prefix"],
        "Secret names must not start with GITHUB_."
    );

    // What PyGithub sealed with its own PyNaCl, opened by the fake's.
    let opened = |scope, name| fake.secret_value(scope, name).expect("the box opens");
    assert_eq!(
        opened(Scope::Repo(REPO), "DB_PASSWORD").as_deref(),
        Some("hunter3")
    );
    assert_eq!(opened(Scope::Repo(REPO), "API_TOKEN"), None, "deleted");
    assert_eq!(
        opened(Scope::Dependabot(REPO), "DEP_TOKEN").as_deref(),
        Some("dep-1")
    );
    assert_eq!(
        opened(Scope::Environment(REPO, ENV), "DEPLOY_KEY").as_deref(),
        Some("ssh-ed25519 AAAA prover")
    );
    assert_eq!(
        opened(Scope::Org(ORG), "ORG_SHARED").as_deref(),
        Some("shared-1")
    );
    let shared = fake.secret(Scope::Org(ORG), "ORG_SHARED").expect("stored");
    assert_eq!(shared.visibility.as_deref(), Some("selected"));
    assert_eq!(shared.selected_repository_ids, vec![repo_id]);
    assert_eq!(fake.secret_names(Scope::Repo(REPO)), ["DB_PASSWORD"]);

    let requests = fake.requests();
    let secret_path = |name: &str| format!("/repos/{REPO}/actions/secrets/{name}");
    for expected in [
        ("PUT", secret_path("db_password"), 201),
        ("PUT", secret_path("DB_PASSWORD"), 204),
        ("DELETE", secret_path("API_TOKEN"), 204),
        ("DELETE", secret_path("API_TOKEN"), 404),
        ("PUT", secret_path("GITHUB_X"), 422),
        (
            "PUT",
            format!("/orgs/{ORG}/actions/secrets/ORG_SHARED"),
            201,
        ),
    ] {
        let (method, path, status) = &expected;
        assert!(
            requests
                .iter()
                .any(|(m, p, s)| m == method && p == path && s == status),
            "{expected:?} among {requests:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pygithub_meets_the_rate_limits() {
    let fake = GitHubFake::start().await;
    let (repo_id, _) = seeded(&fake);

    fake.set_secondary_limit(3, Duration::from_secs(60), 30);
    fake.reset_requests();
    let seen = prove(&fake, repo_id, "secondary").await;
    assert_eq!(seen["ok"], 3, "{seen}");
    assert_eq!(seen["status"], 403);
    assert!(
        seen["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("You have exceeded a secondary rate limit"),
        "{seen}"
    );
    assert_eq!(seen["retry_after"], "30");
    let statuses: Vec<u16> = fake.requests().iter().map(|(_, _, s)| *s).collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 403],
        "no storm: one refusal, no retries"
    );

    fake.clear_rate_limits();
    fake.set_primary_limit(2);
    let seen = prove(&fake, repo_id, "primary").await;
    assert_eq!(seen["ok"], 2, "{seen}");
    assert_eq!(
        seen["remaining_seen"],
        json!([[1, 2], [0, 2]]),
        "PyGithub read x-ratelimit-remaining/limit"
    );
    assert_eq!(seen["status"], 403);
    assert!(
        seen["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("API rate limit exceeded for user ID"),
        "{seen}"
    );
    assert_eq!(seen["remaining"], "0");
    let reset_in = seen["reset_in"].as_i64().expect("a reset");
    assert!(
        (0..=5).contains(&reset_in),
        "reset a few seconds ahead: {seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_repository_secret_protocol() {
    let fake = GitHubFake::start().await;
    seeded(&fake);
    let api = Api::new(&fake, TOKEN);
    let secrets = format!("/repos/{REPO}/actions/secrets");

    // The public key, as a plugin fetches it; every answer carries the rate-limit headers.
    let key = api.get(&format!("{secrets}/public-key")).await;
    assert_eq!(key.status, 200);
    assert!(key.header("content-type").starts_with("application/json"));
    let published = fake.public_key(Scope::Repo(REPO)).expect("seeded");
    assert_eq!(
        key.body,
        json!({"key_id": published.key_id, "key": published.key})
    );
    assert_eq!(STANDARD.decode(&published.key).expect("base64").len(), 32);
    assert_eq!(key.header("x-ratelimit-limit"), "5000");
    assert_eq!(key.header("x-ratelimit-remaining"), "4999");
    assert_eq!(key.header("x-ratelimit-used"), "1");
    assert_eq!(key.header("x-ratelimit-resource"), "core");
    let reset: i64 = key
        .header("x-ratelimit-reset")
        .parse()
        .expect("epoch seconds");
    assert!(reset > unix_now());

    // 201 then 204; GET never shows the value; updated_at moves on every write.
    let created = api.put_sealed(&fake, &secrets, "API_KEY", b"first").await;
    assert_eq!((created.status, &created.body), (201, &json!({})));
    assert_eq!(
        fake.secret_value(Scope::Repo(REPO), "API_KEY"),
        Ok(Some("first".into()))
    );
    let before = fake.secret(Scope::Repo(REPO), "API_KEY").expect("stored");
    let updated = api.put_sealed(&fake, &secrets, "API_KEY", b"second").await;
    assert_eq!((updated.status, &updated.body), (204, &Value::Null));
    let after = fake.secret(Scope::Repo(REPO), "API_KEY").expect("stored");
    assert_eq!(after.created_at, before.created_at);
    assert!(
        after.updated_at > before.updated_at,
        "{before:?} then {after:?}"
    );
    assert_eq!(
        fake.secret_value(Scope::Repo(REPO), "api_key"),
        Ok(Some("second".into()))
    );
    let got = api.get(&format!("{secrets}/api_key")).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body,
        json!({"name": "API_KEY", "created_at": after.created_at, "updated_at": after.updated_at})
    );

    // Name rules: GitHub's 422, nothing stored.
    for name in [
        "GITHUB_X",
        "github_token",
        "1ABC",
        "A-B",
        "A%20B",
        "%C3%A9T%C3%A9",
    ] {
        let refused = api.put_sealed(&fake, &secrets, name, b"v").await;
        assert_eq!(refused.status, 422, "{name}: {}", refused.body);
        assert_eq!(refused.body["status"], "422");
        assert!(
            refused.body["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        );
        assert!(
            refused.body["documentation_url"]
                .as_str()
                .is_some_and(|u| u.ends_with("#create-or-update-a-repository-secret")),
            "{}",
            refused.body
        );
        let expected = if name.to_uppercase().starts_with("GITHUB_") {
            "Secret names must not start with GITHUB_."
        } else {
            "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or \
             underscores (_). Spaces are not allowed. Must start with a letter ([a-z], [A-Z]) or \
             underscores (_)."
        };
        assert_eq!(refused.message(), expected, "{name}");
    }
    assert_eq!(fake.secret_names(Scope::Repo(REPO)), ["API_KEY"]);
    let underscore = api.put_sealed(&fake, &secrets, "_x1", b"ok").await;
    assert_eq!(underscore.status, 201, "a leading underscore is fine");

    // 48 KB of plaintext is the most; the ciphertext is 48 bytes longer.
    let largest = vec![b'a'; MAX_PLAINTEXT];
    let stored = api.put_sealed(&fake, &secrets, "LARGEST", &largest).await;
    assert_eq!(stored.status, 201, "{}", stored.body);
    let opened = fake
        .secret_value(Scope::Repo(REPO), "LARGEST")
        .expect("opens");
    assert_eq!(opened.map(|v| v.len()), Some(MAX_PLAINTEXT));
    let too_large = api
        .put_sealed(&fake, &secrets, "TOO_LARGE", &vec![b'a'; MAX_PLAINTEXT + 1])
        .await;
    assert_eq!(too_large.status, 422, "{}", too_large.body);
    assert!(too_large.message().contains("48 KB"), "{}", too_large.body);

    // A key_id that is not the current key.
    let sealed = fake.seal(&published.key, b"v");
    let wrong_id = api
        .put(
            &format!("{secrets}/WRONG_KEY"),
            json!({"encrypted_value": sealed, "key_id": "123"}),
        )
        .await;
    assert_eq!(wrong_id.status, 422);
    assert_eq!(
        wrong_id.message(),
        "Bad request - validation failed due to an improperly encrypted secret"
    );
    let new_key_id = fake.rotate_public_key(Scope::Repo(REPO));
    assert_ne!(new_key_id, published.key_id);
    let stale = api
        .put(
            &format!("{secrets}/STALE"),
            json!({"encrypted_value": sealed, "key_id": published.key_id}),
        )
        .await;
    assert_eq!(
        stale.status, 422,
        "the key before a rotation: {}",
        stale.body
    );
    let fresh = api.put_sealed(&fake, &secrets, "STALE", b"fresh").await;
    assert_eq!(fresh.status, 201);
    assert_eq!(
        fake.secret(Scope::Repo(REPO), "STALE")
            .expect("stored")
            .key_id,
        new_key_id
    );
    assert_eq!(
        fake.secret_value(Scope::Repo(REPO), "API_KEY"),
        Ok(Some("second".into())),
        "a value sealed for the old key still opens"
    );

    // Malformed bodies.
    let not_base64 = api
        .put(
            &format!("{secrets}/BAD"),
            json!({"encrypted_value": "not base64!", "key_id": new_key_id}),
        )
        .await;
    assert_eq!(not_base64.status, 422);
    assert!(
        not_base64.message().contains("does not match"),
        "{}",
        not_base64.body
    );
    let no_key_id = api
        .put(
            &format!("{secrets}/BAD"),
            json!({"encrypted_value": sealed}),
        )
        .await;
    assert_eq!(no_key_id.status, 422);
    assert_eq!(
        no_key_id.message(),
        "Invalid request.\n\n\"key_id\" wasn't supplied."
    );
    let too_short = api
        .put(
            &format!("{secrets}/BAD"),
            json!({"encrypted_value": STANDARD.encode([7u8; SEAL_OVERHEAD - 1]), "key_id": new_key_id}),
        )
        .await;
    assert_eq!(
        too_short.status, 422,
        "shorter than a sealed box's overhead"
    );
    let not_json = api
        .http
        .put(format!("{}{secrets}/BAD", api.base))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body("{not json")
        .send()
        .await
        .expect("an answer");
    assert_eq!(not_json.status().as_u16(), 400);
    assert!(fake.secret(Scope::Repo(REPO), "BAD").is_none());

    // A box that does not open is stored (GitHub cannot tell either) and reported on inspection.
    let junk = STANDARD.encode([42u8; 80]);
    let stored = api
        .put(
            &format!("{secrets}/JUNK"),
            json!({"encrypted_value": junk, "key_id": new_key_id}),
        )
        .await;
    assert_eq!(stored.status, 201);
    let reason = fake
        .secret_value(Scope::Repo(REPO), "JUNK")
        .expect_err("junk does not open");
    assert!(reason.contains("does not open"), "{reason}");

    // Listing and pagination.
    let names = ["API_KEY", "JUNK", "LARGEST", "STALE", "_X1"];
    let listed = api.get(&secrets).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["total_count"], 5);
    let listed_names: Vec<&str> = listed.body["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(listed_names, names);
    assert!(listed.body["secrets"][0].get("encrypted_value").is_none());
    assert_eq!(listed.header("link"), "", "one page: no Link");
    let first = api.get(&format!("{secrets}?per_page=2")).await;
    assert_eq!(first.body["total_count"], 5);
    assert_eq!(first.body["secrets"].as_array().map(Vec::len), Some(2));
    let base = format!("{}{secrets}", fake.url());
    assert_eq!(
        first.header("link"),
        format!(
            "<{base}?per_page=2&page=2>; rel=\"next\", <{base}?per_page=2&page=3>; rel=\"last\""
        )
    );
    let last = api.get(&format!("{secrets}?per_page=2&page=3")).await;
    assert_eq!(last.body["secrets"][0]["name"], "_X1");
    assert_eq!(
        last.header("link"),
        format!(
            "<{base}?per_page=2&page=2>; rel=\"prev\", <{base}?per_page=2&page=1>; rel=\"first\""
        )
    );

    // Delete: 204, then 404 as GitHub writes it.
    assert_eq!(api.delete(&format!("{secrets}/JUNK")).await.status, 204);
    let again = api.delete(&format!("{secrets}/JUNK")).await;
    assert_eq!(again.status, 404);
    let missing = api.get(&format!("{secrets}/JUNK")).await;
    assert_eq!(
        missing.body,
        json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest/actions/secrets#get-a-repository-secret",
            "status": "404",
        })
    );

    // Someone edits and deletes by hand.
    let before = fake.secret(Scope::Repo(REPO), "API_KEY").expect("stored");
    fake.touch_secret(Scope::Repo(REPO), "API_KEY", "by hand");
    let after = fake.secret(Scope::Repo(REPO), "API_KEY").expect("stored");
    assert!(after.updated_at > before.updated_at);
    assert_eq!(after.key_id, new_key_id);
    assert_eq!(
        fake.secret_value(Scope::Repo(REPO), "API_KEY"),
        Ok(Some("by hand".into()))
    );
    assert!(fake.delete_secret(Scope::Repo(REPO), "api_key"));
    assert!(!fake.delete_secret(Scope::Repo(REPO), "API_KEY"));
    assert_eq!(api.get(&format!("{secrets}/API_KEY")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_environment_organisation_and_dependabot_secrets() {
    let fake = GitHubFake::start().await;
    let (repo_id, other_id) = seeded(&fake);
    let foreign_id = fake.add_repo("someone/else");
    let api = Api::new(&fake, TOKEN);

    // An environment: its own key, its own secrets.
    let environment = api.get(&format!("/repos/{REPO}/environments/{ENV}")).await;
    assert_eq!(environment.status, 200);
    assert_eq!(environment.body["name"], ENV);
    assert_eq!(
        api.get(&format!("/repos/{REPO}/environments/staging"))
            .await
            .status,
        404
    );
    let env_secrets = format!("/repos/{REPO}/environments/{ENV}/secrets");
    let env_key = fake
        .public_key(Scope::Environment(REPO, ENV))
        .expect("seeded");
    assert_ne!(Some(&env_key), fake.public_key(Scope::Repo(REPO)).as_ref());
    let written = api
        .put_sealed(&fake, &env_secrets, "DEPLOY", b"env-value")
        .await;
    assert_eq!(written.status, 201, "{}", written.body);
    assert_eq!(
        fake.secret_value(Scope::Environment(REPO, ENV), "DEPLOY"),
        Ok(Some("env-value".into()))
    );
    assert!(fake.secret_names(Scope::Repo(REPO)).is_empty());
    assert_eq!(
        api.get(&format!("/repos/{REPO}/environments/staging/secrets"))
            .await
            .status,
        404
    );

    // Dependabot: its own key, its own secrets.
    let dependabot = format!("/repos/{REPO}/dependabot/secrets");
    assert_ne!(
        fake.public_key(Scope::Dependabot(REPO)),
        fake.public_key(Scope::Repo(REPO))
    );
    let written = api
        .put_sealed(&fake, &dependabot, "NPM_TOKEN", b"npm")
        .await;
    assert_eq!(written.status, 201);
    assert_eq!(
        fake.secret_value(Scope::Dependabot(REPO), "NPM_TOKEN"),
        Ok(Some("npm".into()))
    );
    assert_eq!(
        api.get(&format!("{dependabot}/NPM_TOKEN")).await.status,
        200
    );

    // An organisation secret with selected repositories.
    let org = api.get(&format!("/orgs/{ORG}")).await;
    assert_eq!((org.status, &org.body["login"]), (200, &json!(ORG)));
    let org_secrets = format!("/orgs/{ORG}/actions/secrets");
    let key = api.get(&format!("{org_secrets}/public-key")).await.body;
    let sealed = fake.seal(key["key"].as_str().expect("a key"), b"org-value");
    let write = |extra: Value| {
        let mut body = json!({"encrypted_value": sealed, "key_id": key["key_id"]});
        body.as_object_mut()
            .expect("an object")
            .extend(extra.as_object().expect("an object").clone());
        body
    };
    let created = api
        .put(
            &format!("{org_secrets}/SHARED"),
            write(
                json!({"visibility": "selected", "selected_repository_ids": [repo_id, other_id]}),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        fake.secret_value(Scope::Org(ORG), "SHARED"),
        Ok(Some("org-value".into()))
    );
    let got = api.get(&format!("{org_secrets}/SHARED")).await;
    assert_eq!(got.body["visibility"], "selected");
    assert_eq!(
        got.body["selected_repositories_url"],
        format!(
            "{}/orgs/{ORG}/actions/secrets/SHARED/repositories",
            fake.url()
        )
    );
    let view = fake.secret(Scope::Org(ORG), "SHARED").expect("stored");
    assert_eq!(view.selected_repository_ids, [repo_id, other_id]);
    let selected = api.get(&format!("{org_secrets}/SHARED/repositories")).await;
    assert_eq!(selected.body["total_count"], 2);
    assert_eq!(selected.body["repositories"][0]["full_name"], REPO);
    let narrowed = api
        .put(
            &format!("{org_secrets}/SHARED/repositories"),
            json!({"selected_repository_ids": [other_id]}),
        )
        .await;
    assert_eq!(narrowed.status, 204);
    assert_eq!(
        fake.secret(Scope::Org(ORG), "SHARED")
            .expect("stored")
            .selected_repository_ids,
        [other_id]
    );

    // What GitHub refuses in an organisation write.
    for (extra, what) in [
        (json!({}), "no visibility"),
        (json!({"visibility": "public"}), "an unknown visibility"),
        (
            json!({"visibility": "all", "selected_repository_ids": [repo_id]}),
            "ids without selected",
        ),
        (
            json!({"visibility": "selected", "selected_repository_ids": [foreign_id]}),
            "another owner's repository",
        ),
        (
            json!({"visibility": "selected", "selected_repository_ids": "1"}),
            "ids not a list",
        ),
    ] {
        let refused = api
            .put(&format!("{org_secrets}/SHARED"), write(extra))
            .await;
        assert_eq!(refused.status, 422, "{what}: {}", refused.body);
    }

    // Visibility `all` drops the selection; the selection endpoint then conflicts.
    let widened = api
        .put(
            &format!("{org_secrets}/SHARED"),
            write(json!({"visibility": "all"})),
        )
        .await;
    assert_eq!(widened.status, 204);
    let got = api.get(&format!("{org_secrets}/SHARED")).await;
    assert_eq!(got.body["visibility"], "all");
    assert!(got.body.get("selected_repositories_url").is_none());
    assert!(
        fake.secret(Scope::Org(ORG), "SHARED")
            .expect("stored")
            .selected_repository_ids
            .is_empty()
    );
    let conflict = api
        .put(
            &format!("{org_secrets}/SHARED/repositories"),
            json!({"selected_repository_ids": [repo_id]}),
        )
        .await;
    assert_eq!(conflict.status, 409);
    let listed = api.get(&org_secrets).await;
    assert_eq!(listed.body["total_count"], 1);
    assert_eq!(listed.body["secrets"][0]["visibility"], "all");

    assert_eq!(api.get("/orgs/no-such-org").await.status, 404);
    assert_eq!(
        api.get("/orgs/no-such-org/actions/secrets").await.status,
        404
    );
    assert_eq!(
        api.delete(&format!("{org_secrets}/SHARED")).await.status,
        204
    );
    assert!(fake.secret_names(Scope::Org(ORG)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_follows_grants_and_credentials() {
    let fake = GitHubFake::start().await;
    fake.add_org(ORG);
    fake.add_repo(REPO);
    fake.add_repo("octo-org/secret-project");
    fake.add_token("ghp_write", &[Grant::Repo(REPO)]);
    fake.add_token("ghp_read", &[Grant::RepoRead(REPO), Grant::OrgRead(ORG)]);
    fake.add_token("ghp_meta", &[Grant::RepoMetadata(REPO)]);
    let (write, read, meta) = (
        Api::new(&fake, "ghp_write"),
        Api::new(&fake, "ghp_read"),
        Api::new(&fake, "ghp_meta"),
    );
    let secrets = format!("/repos/{REPO}/actions/secrets");

    // A private repository the token was not granted does not exist for it.
    let hidden = write.get("/repos/octo-org/secret-project").await;
    assert_eq!(hidden.status, 404);
    assert_eq!(hidden.message(), "Not Found");
    assert_eq!(
        write
            .get("/repos/octo-org/secret-project/actions/secrets")
            .await
            .status,
        404
    );
    let repo = write.get(&format!("/repos/{REPO}")).await;
    assert_eq!(repo.status, 200);
    assert_eq!(repo.body["full_name"], REPO);
    assert_eq!(repo.body["url"], format!("{}/repos/{REPO}", fake.url()));
    assert_eq!(repo.body["owner"]["login"], ORG);
    assert_eq!(repo.body["permissions"]["push"], true);

    // Seeing a repository is not reading its secrets; reading is not writing.
    assert_eq!(
        meta.get(&format!("/repos/{REPO}")).await.body["permissions"]["push"],
        false
    );
    let refused = meta.get(&secrets).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.message(),
        "Resource not accessible by personal access token"
    );
    assert_eq!(read.get(&secrets).await.status, 200);
    assert_eq!(read.get(&format!("{secrets}/public-key")).await.status, 200);
    let refused = read.put_sealed(&fake, &secrets, "NOPE", b"v").await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        read.get(&format!("/orgs/{ORG}/actions/secrets"))
            .await
            .status,
        200
    );
    assert_eq!(
        read.delete(&format!("/orgs/{ORG}/actions/secrets/X"))
            .await
            .status,
        403
    );
    let org_refused = write.get(&format!("/orgs/{ORG}/actions/secrets")).await;
    assert_eq!(org_refused.status, 403, "an organisation not granted");
    assert_eq!(
        org_refused.message(),
        "Resource not accessible by personal access token"
    );
    assert_eq!(
        write.put_sealed(&fake, &secrets, "YES", b"v").await.status,
        201
    );

    // Credentials: both schemes, none, unknown, revoked.
    let token_scheme = Api::with_authorization(&fake, Some("token ghp_write".into()));
    assert_eq!(token_scheme.get(&secrets).await.status, 200);
    let anonymous = Api::with_authorization(&fake, None).get(&secrets).await;
    assert_eq!(
        (anonymous.status, anonymous.message()),
        (401, "Requires authentication")
    );
    let unknown = Api::new(&fake, "ghp_nobody").get(&secrets).await;
    assert_eq!(
        unknown.body,
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
    );
    fake.revoke_token("ghp_write");
    let revoked = write.get(&secrets).await;
    assert_eq!(
        (revoked.status, revoked.message()),
        (401, "Bad credentials")
    );

    // API versions and unknown routes.
    let odd_version = read
        .http
        .get(format!("{}{secrets}", read.base))
        .header("authorization", "Bearer ghp_read")
        .header("x-github-api-version", "1999-01-01")
        .send()
        .await
        .expect("an answer");
    assert_eq!(odd_version.status().as_u16(), 400);
    assert_eq!(
        read.get(&format!("/repos/{REPO}/actions/variables"))
            .await
            .status,
        404
    );
    assert_eq!(read.get("/user").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_and_refusals() {
    let fake = GitHubFake::start().await;
    seeded(&fake);
    let api = Api::new(&fake, TOKEN);
    let path = format!("/repos/{REPO}/actions/secrets");

    // Primary: three requests, then 403 with remaining 0 until the reset a few seconds ahead.
    fake.set_primary_limit(3);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let answer = api.get(&path).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-ratelimit-limit"), "3");
        remaining.push(answer.header("x-ratelimit-remaining").to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let limited = api.get(&path).await;
    assert_eq!(limited.status, 403);
    assert!(
        limited
            .message()
            .starts_with("API rate limit exceeded for user ID"),
        "{}",
        limited.body
    );
    assert_eq!(
        limited.body["documentation_url"],
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
    );
    assert_eq!(limited.header("x-ratelimit-remaining"), "0");
    assert_eq!(limited.header("x-ratelimit-used"), "3");
    let reset: i64 = limited
        .header("x-ratelimit-reset")
        .parse()
        .expect("epoch seconds");
    assert!(reset - unix_now() <= 4, "reset {reset} a few seconds ahead");
    let status = api.get("/rate_limit").await;
    assert_eq!(
        (status.status, &status.body["rate"]["remaining"]),
        (200, &json!(0))
    );
    tokio::time::sleep(Duration::from_secs((reset - unix_now()).max(0) as u64 + 1)).await;
    let after_reset = api.get(&path).await;
    assert_eq!(after_reset.status, 200, "a new window after the reset");
    assert_eq!(after_reset.header("x-ratelimit-remaining"), "2");

    // Secondary: more than two a window is refused, and so is everything for retry-after.
    fake.clear_rate_limits();
    fake.set_secondary_limit(2, Duration::from_secs(30), 1);
    fake.reset_requests();
    assert_eq!(api.get(&path).await.status, 200);
    assert_eq!(api.get(&path).await.status, 200);
    let limited = api.get(&path).await;
    assert_eq!(limited.status, 403);
    assert!(
        limited
            .message()
            .starts_with("You have exceeded a secondary rate limit")
    );
    assert_eq!(limited.header("retry-after"), "1");
    assert_eq!(limited.header("x-ratelimit-resource"), "core");
    assert_eq!(api.get(&path).await.status, 403, "still within retry-after");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(api.get(&path).await.status, 200, "after retry-after");
    let statuses: Vec<u16> = fake.requests().iter().map(|(_, _, s)| *s).collect();
    assert_eq!(statuses, [200, 200, 403, 403, 200]);

    // GitHub also answers limits with 429.
    fake.clear_rate_limits();
    fake.set_rate_limit_status(429);
    fake.set_secondary_limit(1, Duration::from_secs(30), 5);
    assert_eq!(api.get(&path).await.status, 200);
    let limited = api.get(&path).await;
    assert_eq!((limited.status, limited.header("retry-after")), (429, "5"));
}

/// An RSA key pair made by openssl in `dir`: (private PEM, public PEM).
fn rsa_key_pair(dir: &Path, name: &str) -> (String, String) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let (private_path, public_path) = (
        private.to_str().expect("utf-8"),
        public.to_str().expect("utf-8"),
    );
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private_path,
    ]);
    run(&["pkey", "-in", private_path, "-pubout", "-out", public_path]);
    (
        std::fs::read_to_string(private).expect("the private key"),
        std::fs::read_to_string(public).expect("the public key"),
    )
}

/// A JWT with `claims`, signed RS256 with `private_pem`.
fn jwt(private_pem: &str, claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("an RSA key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        claims,
        &key,
    )
    .expect("sign the JWT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_app_jwt_buys_installation_tokens() {
    const APP_ID: u64 = 4242;
    const INSTALLATION: u64 = 77_001;
    let dir = tempfile::tempdir().expect("a temp dir");
    let (private_pem, public_pem) = rsa_key_pair(dir.path(), "app");
    let (other_private, _) = rsa_key_pair(dir.path(), "other");
    let fake = GitHubFake::start().await;
    fake.add_org(ORG);
    fake.add_repo(REPO);
    fake.add_token(TOKEN, &[Grant::Repo(REPO)]);
    fake.add_app(APP_ID, &public_pem, INSTALLATION, &[Grant::Repo(REPO)]);
    let now = unix_now();
    let as_app = |jwt: String| Api::new(&fake, &jwt);
    let mint_path = format!("/app/installations/{INSTALLATION}/access_tokens");

    // The docs' recipe: iat 60 s in the past, exp at most 10 minutes ahead, iss the app id.
    let good = jwt(
        &private_pem,
        &json!({"iat": now - 60, "exp": now + 540, "iss": APP_ID.to_string()}),
    );
    let installation = as_app(good.clone())
        .get(&format!("/repos/{REPO}/installation"))
        .await;
    assert_eq!(installation.status, 200, "{}", installation.body);
    assert_eq!(installation.body["id"], INSTALLATION);
    assert_eq!(installation.body["app_id"], APP_ID);
    assert_eq!(
        as_app(good.clone())
            .get(&format!("/repos/{OTHER_REPO}/installation"))
            .await
            .status,
        404,
        "a repository the installation was not granted (nor seeded)"
    );
    let minted = as_app(good.clone())
        .call(Method::POST, &mint_path, Some(json!({})))
        .await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    let token = minted.body["token"].as_str().expect("a token").to_owned();
    assert!(token.starts_with("ghs_") && token.len() == 40, "{token}");
    let expires_at = chrono::DateTime::parse_from_rfc3339(
        minted.body["expires_at"].as_str().expect("expires_at"),
    )
    .expect("RFC 3339")
    .timestamp();
    assert!(
        (expires_at - now - 3600).abs() <= 60,
        "an hour: {}",
        minted.body
    );
    assert_eq!(minted.body["permissions"]["secrets"], "write");
    let numeric_iss = jwt(
        &private_pem,
        &json!({"iat": now, "exp": now + 600, "iss": APP_ID}),
    );
    assert_eq!(
        as_app(numeric_iss)
            .call(Method::POST, &mint_path, None)
            .await
            .status,
        201,
        "iss as a number"
    );

    // The installation token works like a token with the app's grants.
    let installation_api = Api::new(&fake, &token);
    let secrets = format!("/repos/{REPO}/actions/secrets");
    let written = installation_api
        .put_sealed(&fake, &secrets, "FROM_APP", b"app-value")
        .await;
    assert_eq!(written.status, 201);
    assert_eq!(
        fake.secret_value(Scope::Repo(REPO), "FROM_APP"),
        Ok(Some("app-value".into()))
    );
    let org_refused = installation_api
        .get(&format!("/orgs/{ORG}/actions/secrets"))
        .await;
    assert_eq!(org_refused.status, 403);
    assert_eq!(
        org_refused.message(),
        "Resource not accessible by integration"
    );

    // JWTs GitHub refuses.
    for (jwt, what, message) in [
        (
            jwt(
                &other_private,
                &json!({"iat": now - 60, "exp": now + 540, "iss": APP_ID}),
            ),
            "signed with another key",
            "A JSON web token could not be decoded",
        ),
        (
            jwt(
                &private_pem,
                &json!({"iat": now, "exp": now + 1200, "iss": APP_ID}),
            ),
            "exp 20 minutes ahead",
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            jwt(
                &private_pem,
                &json!({"iat": now - 400, "exp": now + 400, "iss": APP_ID}),
            ),
            "a lifetime over 11 minutes",
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            jwt(
                &private_pem,
                &json!({"iat": now - 700, "exp": now - 100, "iss": APP_ID}),
            ),
            "expired",
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ),
        (
            jwt(&private_pem, &json!({"exp": now + 300, "iss": APP_ID})),
            "no iat",
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ),
        (
            jwt(
                &private_pem,
                &json!({"iat": now, "exp": now + 300, "iss": 999}),
            ),
            "another app's id",
            "A JSON web token could not be decoded",
        ),
        (
            TOKEN.to_owned(),
            "a personal access token",
            "A JSON web token could not be decoded",
        ),
    ] {
        let refused = as_app(jwt).call(Method::POST, &mint_path, None).await;
        assert_eq!(
            (refused.status, refused.message()),
            (401, message),
            "{what}"
        );
    }
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"iat": now, "exp": now + 300, "iss": APP_ID}),
        &jsonwebtoken::EncodingKey::from_secret(b"not an RSA key"),
    )
    .expect("an HS256 JWT");
    assert_eq!(
        as_app(hs256)
            .call(Method::POST, &mint_path, None)
            .await
            .status,
        401
    );
    let unknown = as_app(good.clone())
        .call(Method::POST, "/app/installations/1/access_tokens", None)
        .await;
    assert_eq!(unknown.status, 404, "an installation of no app");

    // Installation tokens expire; a new one can be minted.
    fake.expire_installation_tokens();
    let expired = installation_api.get(&secrets).await;
    assert_eq!(
        (expired.status, expired.message()),
        (401, "Bad credentials")
    );
    let again = as_app(good).call(Method::POST, &mint_path, None).await;
    assert_eq!(again.status, 201);
    let renewed = Api::new(&fake, again.body["token"].as_str().expect("a token"));
    assert_eq!(renewed.get(&secrets).await.status, 200);
    let minted_requests = fake
        .requests()
        .iter()
        .filter(|(m, p, s)| m == "POST" && *p == mint_path && *s == 201)
        .count();
    assert_eq!(minted_requests, 3);
}
