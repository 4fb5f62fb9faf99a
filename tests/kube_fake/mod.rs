//! A fake Kubernetes API server (core/v1 Secrets, apps/v1 workloads) for tests.
//!
//! `KubeFake::start(KubeOptions { tls })` serves on `127.0.0.1` port 0 from its own thread and
//! tokio runtime, so plain `#[test]` functions can run the real `opsync` binary against it; the
//! handle's API is synchronous and dropping it stops the server. It speaks the API server's
//! protocol for what a Secret-writing client uses, and `tests/kube_fake_clients.rs` proves that
//! with the official Python client and kubectl:
//!
//! - bearer tokens (`add_token`/`remove_token`; anything else is 401) and a small RBAC table
//!   (`allow(user, verbs, resource, namespace)`; anything else is 403 with the real message);
//! - discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/apps`, `/apis/apps/v1`, legacy
//!   form); other paths (`/openapi/v2`, `/openapi/v3`, ...) are 404;
//! - Secrets: list (label and field selectors, `limit`/`continue`), get, create, update (PUT with
//!   resourceVersion concurrency), merge and strategic merge patch (both as RFC 7386 merge
//!   patches; strategic `$` directives are refused), server-side apply (JSON bodies, field
//!   ownership per data key, label, annotation, `type` and `immutable`, conflicts and `force`),
//!   delete (with DeleteOptions preconditions), `dryRun=All`, validation as the API server's
//!   (422 `Invalid`), `stringData` folded into `data`, `Table` answers for `kubectl get`;
//! - workloads (deployments, statefulsets, daemonsets): get, list, merge/strategic merge patch
//!   (`kubectl rollout restart`), bumping resourceVersion and, for spec changes, generation;
//! - every error a `Status` object; `set_fail_next(n, status)` fails the next requests on purpose.
//!
//! Not faithful (none used by a Secret-writing client): watch and deletecollection (405), JSON
//! patch (415), protobuf/CBOR bodies, YAML apply bodies that are not JSON (400), apply to
//! workloads (415), managedFields of workloads, list-of-item strategic merge semantics,
//! client-written `managedFields` (ignored), an applied `stringData` (owned as the `data` keys
//! it becomes), aggregated discovery and OpenAPI documents.

#![allow(dead_code)]

mod api;
mod discovery;
mod merge;
mod secret;
mod secret_api;
mod selector;
mod server;
mod ssa;
mod status;
mod table;
mod tls;
mod validate;
mod workload;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use api::{Rule, State};

/// How to start the fake.
#[derive(Clone, Copy, Debug, Default)]
pub struct KubeOptions {
    /// Serve HTTPS with a certificate for 127.0.0.1 and localhost, signed by a CA made at start
    /// (see [`KubeFake::ca_pem`]).
    pub tls: bool,
}

/// A running fake API server; stopped on drop.
pub struct KubeFake {
    state: Arc<Mutex<State>>,
    url: String,
    ca_pem: Option<String>,
    server: server::Running,
}

impl KubeFake {
    pub fn start(options: KubeOptions) -> Self {
        let state = Arc::new(Mutex::new(State::new()));
        let identity = options.tls.then(tls::generate);
        let config = identity.as_ref().map(|i| i.config.clone());
        let server = server::Running::spawn(state.clone(), config);
        let scheme = if options.tls { "https" } else { "http" };
        Self {
            state,
            url: format!("{scheme}://{}", server.addr),
            ca_pem: identity.map(|i| i.ca_pem),
            server,
        }
    }

    /// `http(s)://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The CA (PEM) that signed the server certificate; panics for a plain-HTTP fake.
    pub fn ca_pem(&self) -> String {
        self.ca_pem
            .clone()
            .expect("ca_pem(): this KubeFake was started without tls")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests bearing `Authorization: Bearer TOKEN` are `user`'s (replaces an earlier user).
    pub fn add_token(&self, token: &str, user: &str) {
        self.state()
            .tokens
            .insert(token.to_owned(), user.to_owned());
    }

    /// From now on TOKEN gets 401 (token rotation).
    pub fn remove_token(&self, token: &str) {
        self.state().tokens.remove(token);
    }

    /// Lets `user` do `verbs` (get, list, create, update, patch, delete, or `*`) on `resource`
    /// (`secrets`, `deployments`, `statefulsets`, `daemonsets`) in `namespace` (or `*`).
    pub fn allow(&self, user: &str, verbs: &[&str], resource: &str, namespace: &str) {
        self.state().rules.push(Rule {
            user: user.to_owned(),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            resource: resource.to_owned(),
            namespace: namespace.to_owned(),
        });
    }

    /// Creates (or replaces) a Secret from `secret` (a Secret object; name and namespace are
    /// set from the arguments) as field manager `manager` with operation Update, as
    /// `kubectl create` would. Returns the stored object; panics if the API server would refuse it.
    pub fn put_secret(&self, namespace: &str, name: &str, manager: &str, secret: Value) -> Value {
        let reply = self.state().put_secret(namespace, name, manager, secret);
        assert!(
            reply.is_success(),
            "put_secret {namespace}/{name}: {}",
            reply.message()
        );
        reply.body
    }

    /// The Secret as GET returns it (kind, apiVersion, metadata with managedFields, data, type).
    pub fn secret(&self, namespace: &str, name: &str) -> Option<Value> {
        let state = self.state();
        let secret = state
            .secrets
            .get(&(namespace.to_owned(), name.to_owned()))?;
        Some(secret.to_json())
    }

    /// All Secrets of `namespace`, by name, each as GET returns it.
    pub fn secrets(&self, namespace: &str) -> Vec<Value> {
        let state = self.state();
        state
            .secrets
            .values()
            .filter(|s| s.namespace == namespace)
            .map(|s| s.to_json())
            .collect()
    }

    /// A person's `kubectl edit`: sets `data[key]` to `value` as field manager `manager`
    /// (operation Update). Returns the stored object; panics if the Secret is missing.
    pub fn edit_secret_data(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        value: &[u8],
        manager: &str,
    ) -> Value {
        let reply = self
            .state()
            .edit_secret_data(namespace, name, key, value, manager);
        assert!(
            reply.is_success(),
            "edit_secret_data {namespace}/{name}: {}",
            reply.message()
        );
        reply.body
    }

    /// Removes a Secret, as `kubectl delete` would; false if there was none.
    pub fn delete_secret(&self, namespace: &str, name: &str) -> bool {
        let mut state = self.state();
        let removed = state
            .secrets
            .remove(&(namespace.to_owned(), name.to_owned()))
            .is_some();
        if removed {
            state.next_revision();
        }
        removed
    }

    /// Adds a one-container workload; `kind` is `deployments`, `statefulsets` or `daemonsets`.
    pub fn add_workload(&self, kind: &str, namespace: &str, name: &str) -> Value {
        let mut state = self.state();
        let revision = state.next_revision();
        let object = workload::new_object(kind, namespace, name, revision);
        let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        state.workloads.insert(key, object.clone());
        object
    }

    /// The workload as GET returns it, e.g. to read
    /// `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]`.
    pub fn workload(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        self.state().workloads.get(&key).cloned()
    }

    /// (method, path without query) of every request so far, in order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state().requests.clone()
    }

    pub fn reset_requests(&self) {
        self.state().requests.clear();
    }

    /// Answers the next `n` requests (any path, before authentication) with `status`: 429 comes
    /// with `Retry-After: 1`; 500, 503, 504 with the API server's Status reasons.
    pub fn set_fail_next(&self, n: u32, status: u16) {
        self.state().fail_next = (n, status);
    }
}
