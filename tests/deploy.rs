//! The install paths under deploy/: the Kubernetes manifests validate against the Kubernetes 1.31
//! schemas offline (PyPI `kubernetes-validate`, strict), agree with the config they ship (probe
//! and Service ports, token and state paths), and that config passes this binary's
//! `check-config`; the systemd unit passes `systemd-analyze verify` and keeps its documented
//! exposure score.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use opsync::connect_dev::{DevServer, DevServerOptions};

const BIN: &str = env!("CARGO_BIN_EXE_opsync");

/// The highest `systemd-analyze security` exposure the unit may have (docs/operations.md states
/// the current score; systemd's scale is 0-10, `--threshold` takes tenths).
const MAX_EXPOSURE_TENTHS: u32 = 15;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kubernetes_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// A tool from the repo's .venv; missing means the machine was not set up: fail, naming the fix.
fn venv_tool(name: &str) -> PathBuf {
    let path = repo().join(".venv/bin").join(name);
    assert!(
        path.is_file(),
        "{} not found: run scripts/setup-peers.sh",
        path.display()
    );
    path
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The Kubernetes resources (every YAML file but the kustomization).
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(kubernetes_dir())
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    files
}

/// A YAML file (its first document) as JSON, read by PyYAML (installed with
/// kubernetes-validate).
fn yaml(path: &Path) -> serde_json::Value {
    yaml_documents(path).swap_remove(0)
}

#[test]
fn kubernetes_manifests_validate_strictly_against_the_1_31_schemas() {
    let files = manifests();
    assert!(files.len() >= 8, "{files:?}");
    let out = Command::new(venv_tool("kubernetes-validate"))
        .args(["--kubernetes-version", "1.31.0", "--strict"])
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(
        report.matches(" passed for resource ").count(),
        files.len(),
        "{report}"
    );
    // Every resource a production install needs is there.
    let kinds: BTreeSet<String> = files
        .iter()
        .map(|f| yaml(f)["kind"].as_str().expect("kind").to_owned())
        .collect();
    for kind in [
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceAccount",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
}

#[test]
fn a_broken_manifest_is_refused() {
    // The validator is strict: an unknown field fails, so the test above can fail too.
    let dir = tempfile::tempdir().expect("tmp");
    let deployment =
        std::fs::read_to_string(kubernetes_dir().join("deployment.yaml")).expect("deployment.yaml");
    let broken = dir.path().join("deployment.yaml");
    std::fs::write(&broken, deployment.replace("replicas: 1", "replicaz: 1")).expect("write");
    let out = Command::new(venv_tool("kubernetes-validate"))
        .args(["--kubernetes-version", "1.31.0", "--strict"])
        .arg(&broken)
        .output()
        .expect("kubernetes-validate runs");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("replicaz"), "{}", text(&out));
}

/// Every document of a YAML file, as JSON.
fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(venv_tool("python"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn the_secrets_rbac_validates_and_grants_nothing_cluster_wide() {
    let file = kubernetes_dir().join("rbac").join("secrets.yaml");
    let out = Command::new(venv_tool("kubernetes-validate"))
        .args(["--kubernetes-version", "1.31.0", "--strict"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate runs");
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(
        report.matches(" passed for resource ").count(),
        2,
        "{report}"
    );
    let docs = yaml_documents(&file);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["Role", "RoleBinding"]);
    let role = &docs[0];
    let namespace = role["metadata"]["namespace"].as_str().expect("a namespace");
    assert_eq!(docs[1]["metadata"]["namespace"], namespace);
    assert_eq!(docs[1]["roleRef"]["kind"], "Role");
    assert_eq!(docs[1]["subjects"][0]["name"], "opsync");
    for rule in role["rules"].as_array().expect("rules") {
        let resources: Vec<&str> = rule["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r.as_str())
            .collect();
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .expect("verbs")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(!verbs.contains(&"*") && !resources.contains(&"*"), "{rule}");
        if resources == ["secrets"] {
            assert_eq!(rule["apiGroups"], serde_json::json!([""]), "{rule}");
            assert!(
                verbs
                    .iter()
                    .all(|v| ["get", "create", "patch", "delete"].contains(v)),
                "{rule}"
            );
        } else {
            // Workloads: patch only, by name.
            assert_eq!(rule["apiGroups"], serde_json::json!(["apps"]), "{rule}");
            assert_eq!(verbs, ["patch"], "{rule}");
            assert!(
                rule["resourceNames"]
                    .as_array()
                    .is_some_and(|n| !n.is_empty()),
                "{rule}"
            );
        }
    }
}

#[test]
fn the_deployment_mounts_the_service_account_token_read_only_where_the_docs_say() {
    let deployment = yaml(&kubernetes_dir().join("deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["name"] == "kube-api-access")
        .expect("the token volume is mounted")
        .clone();
    assert_eq!(
        mount["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "kube-api-access")
        .expect("the token volume")
        .clone();
    let paths = volume.to_string();
    for path in ["\"token\"", "\"ca.crt\""] {
        assert!(paths.contains(path), "{volume}");
    }
    let docs = std::fs::read_to_string(repo().join("docs/destinations/kubernetes.md"))
        .expect("docs/destinations/kubernetes.md");
    assert!(
        docs.contains("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
        "the docs name the mounted CA"
    );
}

#[test]
fn kustomization_lists_exactly_the_manifests() {
    let kustomization = yaml(&kubernetes_dir().join("kustomization.yaml"));
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_owned())
        .collect();
    let present: BTreeSet<String> = manifests()
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, present);
}

/// The config.toml the ConfigMap ships.
fn shipped_config() -> String {
    yaml(&kubernetes_dir().join("configmap.yaml"))["data"]["config.toml"]
        .as_str()
        .expect("data.config.toml")
        .to_owned()
}

#[test]
fn the_deployment_agrees_with_the_config_it_mounts() {
    let config: toml::Value = shipped_config().parse().expect("config.toml is TOML");
    let listen = config["admin"]["listen"].as_str().expect("admin.listen");
    let port: u64 = listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let deployment = yaml(&kubernetes_dir().join("deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let admin = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "admin")
        .expect("an admin port");
    assert_eq!(admin["containerPort"].as_u64(), Some(port));
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"], "/healthz",
        "{container}"
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"], "/readyz",
        "{container}"
    );
    // The token file and the state database live where the volumes are mounted.
    let mounts: Vec<(String, String)> = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().expect("name").to_owned(),
                m["mountPath"].as_str().expect("mountPath").to_owned(),
            )
        })
        .collect();
    let under = |path: &str, volume: &str| {
        mounts
            .iter()
            .any(|(name, at)| name == volume && path.starts_with(at.as_str()))
    };
    let token_file = config["connect"]["token_file"]
        .as_str()
        .expect("token_file");
    assert!(under(token_file, "connect-token"), "{mounts:?}");
    let state = config["state"]["path"].as_str().expect("state.path");
    assert!(under(state, "state"), "{mounts:?}");
    assert!(under("/etc/opsync/config.toml", "config"), "{mounts:?}");
    let service = yaml(&kubernetes_dir().join("service.yaml"));
    assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(port));
    // Non-root, nothing to escalate to, a read-only root filesystem.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
}

#[tokio::test]
async fn the_shipped_config_passes_check_config() {
    // A real token (offline, only its claims are read), at the path the Secret is mounted on.
    let connect = DevServer::start(DevServerOptions::default())
        .await
        .expect("connect-dev");
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, shipped_config()).expect("write config");
    let token = dir.path().join("token");
    std::fs::write(&token, connect.token()).expect("write token");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env_clear()
        .env("OPSYNC_CONNECT__TOKEN_FILE", &token)
        .output()
        .expect("opsync runs");
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("production"), "{report}");
    assert!(!report.contains(connect.token()), "{report}");
}

/// The unit with its binary paths pointed at the binary under test (verify checks they exist).
fn unit_under_test(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/opsync.service"))
        .expect("opsync.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/opsync "), "{unit}");
    let path = dir.join("opsync.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/opsync", BIN)).expect("write unit");
    path
}

#[test]
fn the_systemd_unit_verifies_and_keeps_its_exposure_score() {
    let dir = tempfile::tempdir().expect("tmp");
    let unit = unit_under_test(dir.path());
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs (scripts/setup-system.sh installs it)");
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).trim().is_empty(), "{}", text(&verify));

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(format!("--threshold={MAX_EXPOSURE_TENTHS}"))
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let report = text(&security);
    assert!(security.status.success(), "{report}");
    let score = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for opsync.service: ")
                .nth(1)
        })
        .expect("an overall score");
    let score: f64 = score
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("a number");
    assert!(score <= f64::from(MAX_EXPOSURE_TENTHS) / 10.0, "{report}");
    for setting in [
        "DynamicUser=",
        "ProtectSystem=",
        "NoNewPrivileges=",
        "PrivateDevices=",
    ] {
        let line = report
            .lines()
            .find(|l| l.contains(setting))
            .unwrap_or_else(|| panic!("{setting} not in the report:\n{report}"));
        assert!(line.trim_start().starts_with('✓'), "{line}");
    }
}

#[test]
fn the_replicas_variant_runs_three_replicas_on_postgres_and_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join("deploy/kubernetes-replicas"))
        .output()
        .expect("kubectl runs (scripts/setup-system.sh installs it)");
    assert!(out.status.success(), "{}", text(&out));
    let rendered = dir.path().join("replicas.yaml");
    std::fs::write(&rendered, &out.stdout).expect("write");
    let check = Command::new(venv_tool("kubernetes-validate"))
        .args(["--kubernetes-version", "1.31.0", "--strict"])
        .arg(&rendered)
        .output()
        .expect("kubernetes-validate runs");
    assert!(check.status.success(), "{}", text(&check));

    let docs = yaml_documents(&rendered);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert!(!kinds.contains(&"PersistentVolumeClaim"), "{kinds:?}");
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let pod = &deployment["spec"]["template"]["spec"];
    let env = pod["containers"][0]["env"].as_array().expect("env");
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("no {name} in {env:?}"))
            .to_owned()
    };
    let url = url::Url::parse(&value("OPSYNC_STATE__URL")).expect("a URL");
    assert_eq!(url.scheme(), "postgres");
    assert!(url.password().is_none(), "a password in the manifest");
    assert!(value("OPSYNC_STATE__PASSWORD_FILE").starts_with("/var/run/secrets/"));
    let state = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "state")
        .expect("the state volume");
    assert!(state.get("emptyDir").is_some() && state.get("persistentVolumeClaim").is_none());
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Secret" && d["metadata"]["name"] == "opsync-postgres")
    );
}
