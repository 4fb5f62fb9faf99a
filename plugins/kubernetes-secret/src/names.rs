//! Kubernetes names: DNS-1123 labels and subdomains, Secret data keys, and the `restart` list.

use std::fmt;

use opsync_destination_kit::{PluginError, misconfigured};

/// The longest DNS-1123 subdomain (an object name: a Secret, a Deployment).
pub const SUBDOMAIN_MAX: usize = 253;
/// The longest DNS-1123 label (a namespace).
pub const LABEL_MAX: usize = 63;

/// Lower-case letters, digits and `-`, starting and ending with a letter or digit (the length is
/// the caller's to check).
fn label_shape(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (s.bytes().next(), s.bytes().last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && s.bytes().all(|b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// A DNS-1123 label, as namespaces are named: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= LABEL_MAX && label_shape(s)
}

/// A DNS-1123 subdomain, as most objects are named: labels joined by `.`, at most 253 in all.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= SUBDOMAIN_MAX && s.split('.').all(label_shape)
}

/// A key of a Secret's `data`: `[-._a-zA-Z0-9]+`, at most 253, neither `.` nor `..` nor starting
/// with `..` (what the API server accepts).
pub fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= SUBDOMAIN_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && s != "."
        && !s.starts_with("..")
}

/// What a Secret key may be, for messages.
pub const SECRET_KEY_RULE: &str =
    "letters, digits, `-`, `_` and `.`, at most 253, not `.` and not starting with `..`";

/// What an object name may be, for messages.
pub const SUBDOMAIN_RULE: &str = "lower-case letters, digits, `-` and `.`, each `.`-separated \
     part starting and ending with a letter or digit, at most 253 characters";

/// A workload kind `restart` can roll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    /// The kind as written in `restart` (and by kubectl): `deployment`...
    pub fn name(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::StatefulSet => "statefulset",
            Self::DaemonSet => "daemonset",
        }
    }

    /// The resource in the `apps/v1` API path: `deployments`...
    pub fn resource(self) -> &'static str {
        match self {
            Self::Deployment => "deployments",
            Self::StatefulSet => "statefulsets",
            Self::DaemonSet => "daemonsets",
        }
    }
}

/// One workload of the `restart` list, in the plugin's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub name: String,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.name(), self.name)
    }
}

/// The `restart` list (`deployment/NAME`, `statefulset/NAME`, `daemonset/NAME`), each workload
/// once, in the order given.
pub fn parse_restart(entries: &[String]) -> Result<Vec<Workload>, PluginError> {
    let mut workloads: Vec<Workload> = Vec::new();
    for entry in entries {
        let bad = |why: &str| misconfigured(format!("`restart` entry `{entry}`: {why}"));
        let (kind, name) = entry.split_once('/').ok_or_else(|| {
            bad("write it as deployment/NAME, statefulset/NAME or daemonset/NAME")
        })?;
        let kind = match kind.trim() {
            "deployment" => WorkloadKind::Deployment,
            "statefulset" => WorkloadKind::StatefulSet,
            "daemonset" => WorkloadKind::DaemonSet,
            other => {
                return Err(bad(&format!(
                    "`{other}` is not deployment, statefulset or daemonset"
                )));
            }
        };
        let name = name.trim();
        if !is_dns_subdomain(name) {
            return Err(bad(&format!("the name `{name}` is not {SUBDOMAIN_RULE}")));
        }
        let workload = Workload {
            kind,
            name: name.to_string(),
        };
        if !workloads.contains(&workload) {
            workloads.push(workload);
        }
    }
    Ok(workloads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_and_subdomains() {
        for good in ["a", "db", "my-db-1", "0abc", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
            assert!(is_dns_subdomain(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "a b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        for good in [
            "a.b",
            "db-1.prod.example",
            &format!("{}.b", "a".repeat(100)),
        ] {
            assert!(is_dns_subdomain(good), "{good}");
        }
        let long = format!("{}.{}", "a".repeat(126), "b".repeat(126));
        assert_eq!(long.len(), 253);
        assert!(is_dns_subdomain(&long));
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a.-b",
            "a-.b",
            "My-DB",
            "a_b",
            "a/b",
            &format!("{long}c"),
        ] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn secret_keys() {
        for good in [
            "password",
            "API_KEY",
            ".dockerconfigjson",
            "tls.crt",
            "a-b_c.d",
            ".x",
        ] {
            assert!(is_secret_key(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "..x",
            "api key",
            "a/b",
            "a:b",
            "é",
            &"k".repeat(254),
        ] {
            assert!(!is_secret_key(bad), "{bad}");
        }
    }

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_restart_list() {
        let parsed = parse_restart(&entries(&[
            "deployment/web",
            "statefulset/db-0.x",
            " daemonset / agent ",
            "deployment/web",
        ]))
        .expect("valid");
        assert_eq!(
            parsed,
            vec![
                Workload {
                    kind: WorkloadKind::Deployment,
                    name: "web".into()
                },
                Workload {
                    kind: WorkloadKind::StatefulSet,
                    name: "db-0.x".into()
                },
                Workload {
                    kind: WorkloadKind::DaemonSet,
                    name: "agent".into()
                },
            ]
        );
        assert_eq!(parsed[1].to_string(), "statefulset/db-0.x");
        assert_eq!(parsed[2].kind.resource(), "daemonsets");
        assert!(parse_restart(&[]).expect("empty").is_empty());
        for bad in [
            "web",
            "pod/web",
            "Deployment/web",
            "deployments/web",
            "deployment/",
            "deployment/Web",
            "deployment/web/x",
            "deployment/web_1",
        ] {
            let err = parse_restart(&entries(&[bad])).expect_err(bad);
            assert!(
                matches!(&err, PluginError::Misconfigured(m) if m.contains(bad.trim())),
                "{bad}: {err:?}"
            );
        }
    }
}
