//! Real peers for the destination and rotator plugin tests: OpenBao and moto started from the
//! repo's `.venv` (see scripts/setup-peers.sh) on free 127.0.0.1 ports and stopped on drop, plus
//! loading the built-in plugins with a network grant for exactly one peer.

#![allow(dead_code)]

pub mod rsyslog;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opsync::plugin::{
    FailureKind, Grants, HttpPolicy, Limits, Plugin, PluginError, PluginHost, PluginSource,
    PluginSpec, World, sha256_hex,
};
use serde_json::Value;

/// How long a peer may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The peer binary: `$env` if set, else `.venv/bin/<name>`. Missing means the machine was not set
/// up: fail (never skip) and say how to fix it.
pub fn binary(env: &str, name: &str) -> PathBuf {
    let path = match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".venv/bin")
            .join(name),
    };
    assert!(
        path.is_file(),
        "{name} not found at {}: run scripts/setup-peers.sh (or set {env} to the binary)",
        path.display()
    );
    path
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A free port whose successor is free too (OpenBao's dev server also listens on port + 1).
fn free_port_pair() -> u16 {
    loop {
        let port = free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// A child process that is killed and reaped on drop; its output goes to a temp file, shown when
/// it fails to start.
pub struct Process {
    name: &'static str,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command) -> Self {
        let log = tempfile::NamedTempFile::new().expect("temp log file");
        let out = log.reopen().expect("reopen log");
        let err = log.reopen().expect("reopen log");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child, log }
    }

    fn output(&self) -> String {
        let mut text = String::new();
        let _ = self
            .log
            .reopen()
            .and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// Waits until `url` answers with a status below 500; false if the process exited first.
    async fn wait_ready(&mut self, url: &str) -> bool {
        let client = reqwest::Client::new();
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = client.get(url).send().await
                && r.status().as_u16() < 500
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} did not answer {url} within {START_TIMEOUT:?}; its output:\n{}",
            self.name,
            self.output()
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OpenBao dev server (KV v2 at `secret/`, root token `root`).
pub struct Bao {
    _process: Process,
    pub address: String,
    client: reqwest::Client,
}

impl Bao {
    pub const TOKEN: &'static str = "root";

    pub async fn start() -> Self {
        let bin = binary("OPSYNC_BAO_BIN", "bao");
        // A port taken between the probe and the start makes the server exit: try again.
        for _ in 0..3 {
            let port = free_port_pair();
            let mut command = Command::new(&bin);
            command
                .arg("server")
                .arg("-dev")
                .arg(format!("-dev-root-token-id={}", Self::TOKEN))
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                .env("BAO_LOG_LEVEL", "warn")
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR");
            let mut process = Process::spawn("OpenBao", command);
            let address = format!("http://127.0.0.1:{port}");
            if process
                .wait_ready(&format!("{address}/v1/sys/health"))
                .await
            {
                return Self {
                    _process: process,
                    address,
                    client: reqwest::Client::new(),
                };
            }
        }
        panic!("OpenBao did not start on three ports in a row");
    }

    /// `method /v1/<path>` with the root token; (status, JSON body or null).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .client
            .request(method, format!("{}/v1/{path}", self.address))
            .header("x-vault-token", Self::TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("OpenBao answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The current data of `secret/<path>`, if any.
    pub async fn data(&self, path: &str) -> Option<Value> {
        let (status, body) = self.call("GET", &format!("secret/data/{path}"), None).await;
        (status == 200).then(|| body["data"]["data"].clone())
    }

    /// The metadata of `secret/<path>`, if any.
    pub async fn metadata(&self, path: &str) -> Option<Value> {
        let (status, body) = self
            .call("GET", &format!("secret/metadata/{path}"), None)
            .await;
        (status == 200).then(|| body["data"].clone())
    }
}

/// A moto server (AWS APIs).
pub struct Moto {
    _process: Process,
    pub endpoint: String,
    client: reqwest::Client,
}

/// An IAM access key made in moto.
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl Moto {
    /// Moto accepting any credentials.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Moto checking SigV4 signatures and IAM policies, with one user allowed `secretsmanager:*`.
    pub async fn start_with_auth() -> (Self, AccessKey) {
        // The first three calls (make the user, its key, its policy) go unauthenticated.
        let moto = Self::start_with(Some(3)).await;
        let key = moto.make_user().await;
        (moto, key)
    }

    /// Moto checking SigV4 signatures and IAM policies after the first `n` calls, which go
    /// unauthenticated (for the test's own set-up).
    pub async fn start_with_no_auth_calls(n: u32) -> Self {
        Self::start_with(Some(n)).await
    }

    async fn start_with(no_auth_calls: Option<u32>) -> Self {
        let bin = binary("OPSYNC_MOTO_BIN", "moto_server");
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(&bin);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY");
            if let Some(n) = no_auth_calls {
                command.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
            }
            let mut process = Process::spawn("moto", command);
            let endpoint = format!("http://127.0.0.1:{port}");
            if process.wait_ready(&format!("{endpoint}/moto-api/")).await {
                return Self {
                    _process: process,
                    endpoint,
                    client: reqwest::Client::new(),
                };
            }
        }
        panic!("moto did not start on three ports in a row");
    }

    /// A Secrets Manager call, unsigned (moto started by [`Moto::start`] takes any credentials;
    /// the scope in the header routes the call to Secrets Manager).
    pub async fn sm(&self, action: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/", self.endpoint))
            .header("x-amz-target", format!("secretsmanager.{action}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .expect("moto answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An IAM query call that must succeed: its XML body.
    pub async fn iam(&self, params: &[(&str, &str)]) -> String {
        let (status, body) = self.iam_call(params).await;
        assert!(
            (200..300).contains(&status),
            "IAM {params:?}: {status} {body}"
        );
        body
    }

    /// An IAM query call, unsigned (moto started by [`Moto::start`], or within the unauthenticated
    /// calls): (status, XML body).
    pub async fn iam_call(&self, params: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}/", self.endpoint))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .form(&[params, &[("Version", "2010-05-08")][..]].concat())
            .send()
            .await
            .expect("moto answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// Creates an IAM user and one access key for it, unsigned.
    pub async fn user_with_key(&self, user: &str) -> AccessKey {
        self.iam(&[("Action", "CreateUser"), ("UserName", user)])
            .await;
        let xml = self
            .iam(&[("Action", "CreateAccessKey"), ("UserName", user)])
            .await;
        AccessKey {
            id: xml_text(&xml, "AccessKeyId"),
            secret: xml_text(&xml, "SecretAccessKey"),
        }
    }

    /// Gives `user` an inline policy allowing `actions` on everything, unsigned.
    pub async fn allow(&self, user: &str, actions: &[&str]) {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }],
        })
        .to_string();
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", user),
            ("PolicyName", "opsync-test"),
            ("PolicyDocument", &policy),
        ])
        .await;
    }

    /// `user`'s access keys, from an unsigned IAM ListAccessKeys: (key id, `Active`/`Inactive`),
    /// sorted by id. Moto checking signatures lets exactly this call through unsigned
    /// (`/moto-api/reset-auth`); one that takes any credentials keeps doing so.
    pub async fn access_keys(&self, user: &str) -> Vec<(String, String)> {
        let reset = |count: &'static str| {
            self.client
                .post(format!("{}/moto-api/reset-auth", self.endpoint))
                .body(count)
                .send()
        };
        let previous: Value = reset("1")
            .await
            .expect("moto answers")
            .json()
            .await
            .expect("JSON");
        let (status, xml) = self
            .iam_call(&[("Action", "ListAccessKeys"), ("UserName", user)])
            .await;
        if previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"] == "inf" {
            reset("inf").await.expect("moto answers");
        }
        assert_eq!(status, 200, "{xml}");
        let mut keys: Vec<(String, String)> = xml
            .split("<member>")
            .skip(1)
            .map(|member| (xml_text(member, "AccessKeyId"), xml_text(member, "Status")))
            .collect();
        keys.sort();
        keys
    }

    async fn make_user(&self) -> AccessKey {
        self.iam(&[("Action", "CreateUser"), ("UserName", "opsync")])
            .await;
        let xml = self
            .iam(&[("Action", "CreateAccessKey"), ("UserName", "opsync")])
            .await;
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*" }],
        })
        .to_string();
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", "opsync"),
            ("PolicyName", "secrets"),
            ("PolicyDocument", &policy),
        ])
        .await;
        AccessKey {
            id: xml_text(&xml, "AccessKeyId"),
            secret: xml_text(&xml, "SecretAccessKey"),
        }
    }
}

fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).expect("tag in answer") + open.len();
    let end = xml[start..].find("</").expect("closing tag") + start;
    xml[start..end].to_string()
}

/// A built-in destination as the daemon loads it, allowed to reach `allowed` (`http://host:port`)
/// and nothing else.
pub fn destination(
    host: &PluginHost,
    builtin: &str,
    pairs: &[(&str, &str)],
    allowed: &str,
) -> Plugin {
    let grants = Grants {
        http: HttpPolicy {
            allowed: vec![allowed.parse().expect("allow-list rule")],
            tls: None,
        },
        ..Grants::default()
    };
    host.load(PluginSpec {
        name: format!("to-{builtin}"),
        source: builtin_source(builtin),
        world: Some(World::Destination),
        config: crate::plugin_support::config(pairs),
        limits: Limits::default(),
        grants,
    })
    .unwrap_or_else(|e| panic!("the built-in {builtin} plugin loads: {e}"))
}

/// A built-in rotator as the daemon loads it, allowed to reach `allowed` (`http://host:port`) and
/// nothing else.
pub fn rotator(host: &PluginHost, builtin: &str, pairs: &[(&str, &str)], allowed: &str) -> Plugin {
    let grants = Grants {
        http: HttpPolicy {
            allowed: vec![allowed.parse().expect("allow-list rule")],
            tls: None,
        },
        ..Grants::default()
    };
    host.load(PluginSpec {
        name: format!("rotate-{builtin}"),
        source: builtin_source(builtin),
        world: Some(World::Rotator),
        config: crate::plugin_support::config(pairs),
        limits: Limits::default(),
        grants,
    })
    .unwrap_or_else(|e| panic!("the built-in {builtin} plugin loads: {e}"))
}

/// The embedded component when the host lists it among its built-ins, else the same component
/// from the build's output directory (pinned to its hash like any external plugin).
fn builtin_source(name: &str) -> PluginSource {
    if opsync::plugin::BUILTINS.iter().any(|b| b.name == name) {
        return PluginSource::Builtin(name.to_string());
    }
    let path = Path::new(env!("OUT_DIR"))
        .join("plugins")
        .join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("built-in {name} at {}: {e}", path.display()));
    PluginSource::File {
        path,
        sha256: sha256_hex(&bytes),
    }
}

/// The kind and message of a failure the plugin itself reported; panics on any other error.
pub fn failure(err: PluginError) -> (FailureKind, String) {
    let message = err.to_string();
    match err {
        PluginError::Failed { failure, .. } => (failure.kind, message),
        other => panic!("expected a failure reported by the plugin, got: {other}"),
    }
}
