//! Proves the fake Kubernetes API server (tests/kube_fake) against outside clients: the official
//! Python client (tests/kube_fake/prove.py) and kubectl drive it over TLS and plain HTTP, then
//! direct requests pin down its apply, validation, auth and failure rules.

mod kube_fake;
mod venv;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube_fake::{KubeFake, KubeOptions};
use serde_json::{Value, json};

/// The namespace the clients work in, one they may not touch, and their identity.
const NS: &str = "team-a";
const FORBIDDEN_NS: &str = "kube-system";
const TOKEN: &str = "prover-token";
const USER: &str = "system:serviceaccount:team-a:prover";
const ALL_VERBS: &[&str] = &["get", "list", "create", "update", "patch", "delete"];

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

/// A fake with the prover's token, its RBAC, and a Deployment to restart.
fn fake_for_clients(tls: bool) -> KubeFake {
    let fake = KubeFake::start(KubeOptions { tls });
    fake.add_token(TOKEN, USER);
    fake.allow(USER, ALL_VERBS, "secrets", NS);
    fake.allow(USER, &["get", "patch"], "deployments", NS);
    fake.add_workload("deployments", NS, "web");
    fake
}

/// kubectl from PATH.
fn kubectl() -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("kubectl"))
        .find(|path| path.is_file());
    found.expect("kubectl is not on PATH: run `bash scripts/setup-system.sh`")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs prove.py against `fake` and returns its observations.
fn run_python_client(fake: &KubeFake, ca_file: Option<&Path>) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kube_fake/prove.py");
    let ca = ca_file.map(|p| p.display().to_string()).unwrap_or_default();
    let output = Command::new(venv::python_with(
        "kubernetes",
        "the Kubernetes Python client (PyPI kubernetes)",
    ))
    .arg(script)
    .args([&fake.url(), TOKEN, &ca, NS, FORBIDDEN_NS, "web"])
    .output()
    .expect("run prove.py");
    assert!(
        output.status.success(),
        "prove.py failed ({}):\n{}\n{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    let line = stdout(&output);
    serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("prove.py printed no JSON ({e}): {line}"))
}

fn check_python_observations(seen: &Value) {
    assert_eq!(seen["already_exists"], "AlreadyExists");
    assert_eq!(seen["string_data_as_data"], b64("s3cret"));
    assert_eq!(
        seen["managers_after_create"],
        json!([["prove-create", "Update"]])
    );
    assert_eq!(seen["listed"], json!(["prove-data", "prove-string"]));
    assert_eq!(seen["listed_with_tier"], json!(["prove-data"]));
    assert_eq!(
        seen["stale_replace"],
        "Operation cannot be fulfilled on secrets \"prove-data\": the object has been modified; \
         please apply your changes to the latest version and try again"
    );
    assert_eq!(
        seen["apply_conflict"],
        json!({
            "message": "Apply failed with 1 conflict: conflict with \"prove-create\" using v1: .data.password",
            "fields": [".data.password"],
        })
    );
    assert_eq!(
        seen["managers_after_force"],
        json!([
            [
                "OpenAPI-Generator",
                "Update",
                r#"{"f:data": {"f:user": {}}, "f:metadata": {"f:labels": {"f:patched": {}}}}"#
            ],
            ["prove", "Apply", r#"{"f:data": {"f:password": {}}}"#],
            [
                "prove-create",
                "Update",
                r#"{"f:data": {".": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:tier": {}}}, "f:type": {}}"#
            ],
        ]),
        "the forced apply took .data.password from prove-create; the merge patch (no fieldManager: \
         the User-Agent's product) owns what it added"
    );
    assert_eq!(
        seen["forbidden"],
        format!(
            "secrets \"prove-data\" is forbidden: User \"{USER}\" cannot get resource \"secrets\" \
             in API group \"\" in the namespace \"{FORBIDDEN_NS}\""
        )
    );
    assert_eq!(seen["invalid_name"], json!(["metadata.name"]));
    assert_eq!(
        seen["too_big"],
        "Secret \"prove-big\" is invalid: data: Too long: must have at most 1048576 bytes"
    );
    assert_eq!(seen["not_found"], "secrets \"prove-string\" not found");
    assert_eq!(seen["deployment_generation"], 2);
}

/// A throwaway kubeconfig (JSON, which is YAML) for the prover, with HOME and the cache beside it.
struct Kubectl {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Kubectl {
    fn new(fake: &KubeFake, ca_file: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for kubectl");
        let mut cluster = json!({"server": fake.url()});
        if let Some(ca) = ca_file {
            cluster["certificate-authority"] = json!(ca);
        }
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "prover", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "prover"}}],
            "current-context": "fake",
        });
        std::fs::write(dir.path().join("kubeconfig"), config.to_string())
            .expect("write the kubeconfig");
        Self {
            dir,
            binary: kubectl(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let home = self.dir.path();
        Command::new(&self.binary)
            .args(args)
            .arg(format!(
                "--kubeconfig={}",
                home.join("kubeconfig").display()
            ))
            .arg(format!("--cache-dir={}", home.join("cache").display()))
            .arg("--request-timeout=20s")
            .env("HOME", home)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}): {}",
            output.status,
            stderr(&output)
        );
        stdout(&output)
    }
}

/// kubectl reads back what the Python client wrote, lists, and is refused elsewhere.
fn check_kubectl(fake: &KubeFake, ca_file: &Path) {
    let kubectl = Kubectl::new(fake, Some(ca_file));
    let secret: Value =
        serde_json::from_str(&kubectl.ok(&["get", "secret", "prove-data", "-n", NS, "-o", "json"]))
            .expect("kubectl -o json prints JSON");
    assert_eq!(secret["metadata"]["name"], "prove-data");
    assert_eq!(secret["data"]["password"], b64("applied"));
    assert_eq!(secret["metadata"]["labels"]["patched"], "yes");

    let user = kubectl.ok(&[
        "get",
        "secret",
        "prove-data",
        "-n",
        NS,
        "-o",
        "jsonpath={.data.user}",
    ]);
    assert_eq!(user, b64("admin"));

    let list: Value =
        serde_json::from_str(&kubectl.ok(&["get", "secrets", "-n", NS, "-o", "json"]))
            .expect("kubectl -o json prints JSON");
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["prove-data"]);

    let table = kubectl.ok(&["get", "secrets", "-n", NS]);
    assert!(
        table.contains("prove-data") && table.contains("Opaque"),
        "kubectl's table lists the Secret: {table}"
    );

    let deployment = kubectl.ok(&["get", "deployment", "web", "-n", NS]);
    assert!(
        deployment.contains("web"),
        "kubectl's table shows the Deployment: {deployment}"
    );

    let refused = kubectl.run(&[
        "get",
        "secret",
        "prove-data",
        "-n",
        FORBIDDEN_NS,
        "-o",
        "json",
    ]);
    assert!(
        !refused.status.success(),
        "kubectl in {FORBIDDEN_NS} must fail"
    );
    assert!(
        stderr(&refused).contains("forbidden"),
        "kubectl says forbidden: {}",
        stderr(&refused)
    );
}

/// kubectl (client-go) sends a bearer token only over TLS: over plain HTTP it gets the fake's 401.
fn check_kubectl_without_tls(fake: &KubeFake) {
    let kubectl = Kubectl::new(fake, None);
    let refused = kubectl.run(&["get", "secret", "prove-data", "-n", NS, "-o", "json"]);
    assert!(
        !refused.status.success(),
        "kubectl sends no token over plain HTTP"
    );
    assert!(
        stderr(&refused).contains("You must be logged in to the server"),
        "kubectl reports the 401: {}",
        stderr(&refused)
    );
}

/// The Python client, then kubectl, then the fake's own view of what they did.
fn prove(tls: bool) {
    let fake = fake_for_clients(tls);
    let dir = tempfile::tempdir().expect("a temp dir for the CA");
    let ca_file = tls.then(|| {
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, fake.ca_pem()).expect("write the CA");
        path
    });
    let seen = run_python_client(&fake, ca_file.as_deref());
    check_python_observations(&seen);
    match ca_file.as_deref() {
        Some(ca) => check_kubectl(&fake, ca),
        None => check_kubectl_without_tls(&fake),
    }

    let restarted = fake
        .workload("deployments", NS, "web")
        .expect("the Deployment");
    let annotations = &restarted["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["kubectl.kubernetes.io/restartedAt"],
        "2024-05-01T12:00:00Z"
    );
    assert!(
        fake.secret(NS, "prove-string").is_none(),
        "deleted through the Python client"
    );
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|(m, p)| m == "PATCH" && p == "/api/v1/namespaces/team-a/secrets/prove-data"),
        "the fake records requests: {requests:?}"
    );
}

#[test]
fn python_client_and_kubectl_over_tls() {
    prove(true);
}

#[test]
fn python_client_and_kubectl_over_plain_http() {
    prove(false);
}

/// Direct requests to a fake, as the prover.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(fake: &KubeFake) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: fake.url(),
            token: TOKEN.to_owned(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("Content-Type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.expect("the fake answers");
        let code = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (code, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, "", None).await
    }

    async fn apply(&self, name: &str, manager: &str, force: bool, config: Value) -> (u16, Value) {
        let path =
            format!("/api/v1/namespaces/{NS}/secrets/{name}?fieldManager={manager}&force={force}");
        let mut config = config;
        config["apiVersion"] = json!("v1");
        config["kind"] = json!("Secret");
        config["metadata"]["name"] = json!(name);
        self.send("PATCH", &path, "application/apply-patch+yaml", Some(config))
            .await
    }
}

/// (manager, operation) -> fieldsV1 of an object's managedFields.
fn owners(object: &Value) -> Vec<(String, String, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (text("manager"), text("operation"), m["fieldsV1"].clone())
        })
        .collect()
}

#[tokio::test]
async fn apply_conflicts_share_force_and_remove_fields() {
    let fake = fake_for_clients(false);
    let api = Api::new(&fake);
    fake.put_secret(
        NS,
        "db",
        "kubectl-create",
        json!({
            "metadata": {"labels": {"app": "db"}},
            "data": {"password": b64("one"), "user": b64("admin")},
        }),
    );
    fake.edit_secret_data(NS, "db", "password", b"edited", "kubectl-edit");
    let created_by_kubectl = json!({
        "f:data": {".": {}, "f:user": {}},
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:type": {},
    });
    let edited = fake.secret(NS, "db").expect("the Secret");
    assert_eq!(
        owners(&edited),
        [
            (
                "kubectl-create".into(),
                "Update".into(),
                created_by_kubectl.clone()
            ),
            (
                "kubectl-edit".into(),
                "Update".into(),
                json!({"f:data": {"f:password": {}}})
            ),
        ]
    );
    assert_eq!(edited["metadata"]["managedFields"][0]["apiVersion"], "v1");
    assert_eq!(
        edited["metadata"]["managedFields"][0]["fieldsType"],
        "FieldsV1"
    );

    // A different password conflicts with kubectl-edit; the same user is shared, no conflict.
    let config = json!({"data": {"password": b64("two"), "user": b64("admin")}});
    let (code, status) = api.apply("db", "opsync", false, config.clone()).await;
    assert_eq!(code, 409);
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.password"
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{
            "reason": "FieldManagerConflict",
            "message": "conflict with \"kubectl-edit\" using v1",
            "field": ".data.password",
        }])
    );

    let (code, forced) = api.apply("db", "opsync", true, config.clone()).await;
    assert_eq!(code, 200, "{forced}");
    assert_eq!(forced["data"]["password"], b64("two"));
    assert_eq!(
        owners(&forced),
        [
            (
                "kubectl-create".into(),
                "Update".into(),
                created_by_kubectl.clone()
            ),
            (
                "opsync".into(),
                "Apply".into(),
                json!({"f:data": {"f:password": {}, "f:user": {}}})
            ),
        ],
        "kubectl-edit lost its only field; user is shared"
    );

    // The same apply again writes nothing.
    let (code, again) = api.apply("db", "opsync", false, config).await;
    assert_eq!(code, 200);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        forced["metadata"]["resourceVersion"]
    );

    // Dropping user keeps it (kubectl-create still owns it); dropping password removes it.
    let (code, dropped) = api
        .apply("db", "opsync", false, json!({"data": {"token": b64("t")}}))
        .await;
    assert_eq!(code, 200, "{dropped}");
    assert_eq!(
        dropped["data"],
        json!({"token": b64("t"), "user": b64("admin")})
    );

    // Two conflicts, two managers.
    fake.edit_secret_data(NS, "db", "token", b"human", "kubectl-edit");
    let (code, status) = api
        .apply(
            "db",
            "other",
            false,
            json!({"metadata": {"labels": {"app": "x"}}, "data": {"token": b64("u")}}),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(
        status["message"],
        "Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using v1:\n- .metadata.labels.app\n\
         conflicts with \"kubectl-edit\" using v1:\n- .data.token"
    );

    // Apply creates a missing Secret (201), owning only what it sent; type defaults to Opaque.
    let (code, created) = api
        .apply("fresh", "opsync", false, json!({"data": {"k": b64("v")}}))
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["type"], "Opaque");
    assert_eq!(
        owners(&created),
        [(
            "opsync".into(),
            "Apply".into(),
            json!({"f:data": {"f:k": {}}})
        )]
    );
}

#[tokio::test]
async fn apply_needs_a_field_manager_and_a_json_body() {
    let fake = fake_for_clients(false);
    let api = Api::new(&fake);
    let path = format!("/api/v1/namespaces/{NS}/secrets/x");
    let config = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});

    let (code, status) = api
        .send(
            "PATCH",
            &path,
            "application/apply-patch+yaml",
            Some(config.clone()),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );

    let yaml = api
        .client
        .patch(format!("{}{path}?fieldManager=m", api.base))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/apply-patch+yaml")
        .body("apiVersion: v1\nkind: Secret\n")
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(yaml.status().as_u16(), 400);

    let (code, _) = api
        .send(
            "PATCH",
            &path,
            "application/json-patch+json",
            Some(json!([])),
        )
        .await;
    assert_eq!(code, 415);

    let merge = format!("{path}?force=true");
    let (code, status) = api
        .send(
            "PATCH",
            &merge,
            "application/merge-patch+json",
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 422, "{status}");

    let (code, status) = api
        .send(
            "PATCH",
            &path,
            "application/merge-patch+json",
            Some(json!({})),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
}

#[tokio::test]
async fn validation_matches_the_api_server() {
    let fake = fake_for_clients(false);
    let api = Api::new(&fake);
    let create = |body: Value| {
        let api = &api;
        async move {
            api.send(
                "POST",
                &format!("/api/v1/namespaces/{NS}/secrets"),
                "application/json",
                Some(body),
            )
            .await
        }
    };

    let (code, status) = create(json!({"metadata": {"name": "ok"}, "data": {"bad key": ""}})).await;
    assert_eq!(code, 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["kind"], "Secret");
    assert_eq!(status["details"]["causes"][0]["field"], "data[bad key]");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );
    assert!(status["message"].as_str().is_some_and(|m| m.starts_with(
        "Secret \"ok\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key"
    )));

    let (code, status) = create(json!({"metadata": {"name": "ok"}, "data": {"..": ""}})).await;
    assert_eq!(
        (code, status["details"]["causes"][0]["message"].as_str()),
        (422, Some("Invalid value: \"..\": must not be '..'"))
    );

    let (code, status) =
        create(json!({"metadata": {"name": "ok"}, "data": {"k": "not base64!"}})).await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("illegal base64 data"))
    );

    let (code, status) = create(json!({"metadata": {"name": "-bad"}})).await;
    assert_eq!(
        (code, status["details"]["causes"][0]["field"].as_str()),
        (422, Some("metadata.name"))
    );

    let exactly = STANDARD.encode(vec![0u8; 1024 * 1024]);
    let (code, _) = create(json!({"metadata": {"name": "max"}, "data": {"blob": exactly}})).await;
    assert_eq!(code, 201, "exactly 1 MiB is allowed");

    let (code, status) = create(
        json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "Secret \"tls\" is invalid: data[tls.key]: Required value"
    );

    let (code, status) =
        create(json!({"metadata": {"name": "docker"}, "type": "kubernetes.io/dockerconfigjson"}))
            .await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "Secret \"docker\" is invalid: data[.dockerconfigjson]: Required value"
    );

    let (code, status) =
        create(json!({"metadata": {"name": "lbl", "labels": {"a/b/c": "x"}}})).await;
    assert_eq!(
        (code, status["details"]["causes"][0]["field"].as_str()),
        (422, Some("metadata.labels"))
    );

    // stringData is folded into data and never stored.
    let strings = json!({
        "metadata": {"name": "strings"},
        "stringData": {"k": "v"},
        "data": {"k": b64("old"), "j": b64("x")},
    });
    let (code, created) = create(strings).await;
    assert_eq!(code, 201);
    assert_eq!(created["data"], json!({"j": b64("x"), "k": b64("v")}));
    assert!(created.get("stringData").is_none());

    // type is immutable.
    let patch = format!("/api/v1/namespaces/{NS}/secrets/strings");
    let (code, status) = api
        .send(
            "PATCH",
            &patch,
            "application/merge-patch+json",
            Some(json!({"type": "example.com/custom"})),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "Secret \"strings\" is invalid: type: Invalid value: \"example.com/custom\": field is immutable"
    );
}

#[tokio::test]
async fn updates_and_deletes_honour_preconditions() {
    let fake = fake_for_clients(false);
    let api = Api::new(&fake);
    let stored = fake.put_secret(NS, "s", "kubectl-create", json!({"data": {"a": b64("1")}}));
    let path = format!("/api/v1/namespaces/{NS}/secrets/s");

    let mut update = stored.clone();
    update["data"]["a"] = json!(b64("2"));
    let (code, updated) = api
        .send("PUT", &path, "application/json", Some(update.clone()))
        .await;
    assert_eq!(code, 200, "{updated}");
    let new_rv: u64 = updated["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("an integer");
    let old_rv: u64 = stored["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("an integer");
    assert!(new_rv > old_rv);
    assert_eq!(updated["metadata"]["uid"], stored["metadata"]["uid"]);
    assert_eq!(
        updated["metadata"]["creationTimestamp"],
        stored["metadata"]["creationTimestamp"]
    );

    let (code, status) = api
        .send("PUT", &path, "application/json", Some(update))
        .await;
    assert_eq!(code, 409);
    assert_eq!(status["details"], json!({"name": "s", "kind": "secrets"}));

    let wrong_uid =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "nope"}});
    let (code, status) = api
        .send("DELETE", &path, "application/json", Some(wrong_uid))
        .await;
    assert_eq!(code, 409, "{status}");

    let (code, status) = api.send("DELETE", &path, "application/json", None).await;
    assert_eq!(code, 200);
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["uid"], stored["metadata"]["uid"]);
    let (code, _) = api.send("DELETE", &path, "application/json", None).await;
    assert_eq!(code, 404);

    let (code, status) = api
        .send(
            "POST",
            &format!("/api/v1/namespaces/{NS}/secrets"),
            "application/json",
            Some(json!({"metadata": {"name": "dup"}})),
        )
        .await;
    assert_eq!(code, 201, "{status}");
    let (code, status) = api
        .send(
            "POST",
            &format!("/api/v1/namespaces/{NS}/secrets"),
            "application/json",
            Some(json!({"metadata": {"name": "dup"}})),
        )
        .await;
    assert_eq!(
        (code, status["message"].as_str()),
        (409, Some("secrets \"dup\" already exists"))
    );
}

#[tokio::test]
async fn auth_rbac_faults_and_request_log() {
    let fake = fake_for_clients(true);
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(fake.ca_pem().as_bytes()).expect("the CA parses"),
        )
        .build()
        .expect("a TLS client");
    let api = Api {
        client,
        base: fake.url(),
        token: TOKEN.to_owned(),
    };
    let list = format!("/api/v1/namespaces/{NS}/secrets");

    let anonymous = api
        .client
        .get(format!("{}{list}", api.base))
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(anonymous.status().as_u16(), 401);
    let status: Value = anonymous.json().await.expect("a Status");
    assert_eq!(
        (status["reason"].as_str(), status["code"].as_u64()),
        (Some("Unauthorized"), Some(401))
    );

    let (code, _) = api.get(&list).await;
    assert_eq!(code, 200);

    let (code, status) = api
        .get(&format!("/apis/apps/v1/namespaces/{NS}/statefulsets/db"))
        .await;
    assert_eq!(code, 403, "{status}");
    let (code, status) = api
        .get(&format!("/api/v1/namespaces/{FORBIDDEN_NS}/secrets"))
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        status["message"],
        format!(
            "secrets is forbidden: User \"{USER}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{FORBIDDEN_NS}\""
        )
    );
    let (code, status) = api
        .get(&format!("/apis/apps/v1/namespaces/{NS}/deployments/nope"))
        .await;
    assert_eq!(
        (code, status["message"].as_str()),
        (404, Some("deployments.apps \"nope\" not found"))
    );

    fake.set_fail_next(1, 429);
    let response = api
        .client
        .get(format!("{}{list}", api.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let (code, _) = api.get(&list).await;
    assert_eq!(code, 200, "only the next request fails");

    fake.reset_requests();
    let (code, _) = api.get(&format!("{list}?labelSelector=app%3Dx")).await;
    assert_eq!(code, 200);
    assert_eq!(fake.requests(), [("GET".to_owned(), list.clone())]);

    fake.remove_token(TOKEN);
    let (code, _) = api.get(&list).await;
    assert_eq!(code, 401, "a removed token is refused");
}

#[tokio::test]
async fn workload_restart_patch_bumps_generation() {
    let fake = fake_for_clients(false);
    let api = Api::new(&fake);
    let before = fake
        .workload("deployments", NS, "web")
        .expect("the Deployment");
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/web");
    let annotations = json!({"kubectl.kubernetes.io/restartedAt": "now"});
    let restart = json!({"spec": {"template": {"metadata": {"annotations": annotations}}}});
    let (code, after) = api
        .send(
            "PATCH",
            &path,
            "application/strategic-merge-patch+json",
            Some(restart),
        )
        .await;
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["metadata"]["generation"], 2);
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(
        after["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web"})
    );
    assert_eq!(fake.workload("deployments", NS, "web"), Some(after));

    let (code, _) = api
        .send("PUT", &path, "application/json", Some(json!({})))
        .await;
    assert_eq!(code, 403, "the prover may only get and patch Deployments");
}
