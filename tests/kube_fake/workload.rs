//! apps/v1 workloads (Deployments, StatefulSets, DaemonSets): get, list, restart patches.

use serde_json::{Value, json};

use super::api::{self, PatchKind, Request, State};
use super::merge::{merge_patch, strategic_directive};
use super::status::{self, Reply, Target};
use super::table;

/// The workload resources served under `/apis/apps/v1`.
pub const KINDS: [&str; 3] = ["deployments", "statefulsets", "daemonsets"];

fn kind_of(resource: &str) -> &'static str {
    match resource {
        "deployments" => "Deployment",
        "statefulsets" => "StatefulSet",
        "daemonsets" => "DaemonSet",
        other => panic!("{other:?} is not a workload resource (one of {KINDS:?})"),
    }
}

/// A minimal workload of one container, as GET returns it.
pub fn new_object(resource: &str, namespace: &str, name: &str, resource_version: u64) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
        },
    });
    if resource != "daemonsets" {
        spec["replicas"] = json!(1);
    }
    if resource == "statefulsets" {
        spec["serviceName"] = json!(name);
    }
    json!({
        "kind": kind_of(resource),
        "apiVersion": "apps/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": api::new_uid(),
            "resourceVersion": resource_version.to_string(),
            "generation": 1,
            "creationTimestamp": api::now(),
            "labels": {"app": name},
        },
        "spec": spec,
        "status": {"observedGeneration": 1},
    })
}

fn key(resource: &str, namespace: &str, name: &str) -> (String, String, String) {
    (resource.to_owned(), namespace.to_owned(), name.to_owned())
}

impl State {
    /// `/apis/apps/v1/namespaces/{namespace}/{resource}[/{name}]`, once `verb` is authorized.
    pub fn workload_endpoint(
        &mut self,
        request: &Request,
        resource: &str,
        namespace: &str,
        name: Option<&str>,
        verb: &str,
    ) -> Reply {
        match (verb, name) {
            ("list", None) => self.list_workloads(request, resource, namespace),
            ("get", Some(name)) => match self.workloads.get(&key(resource, namespace, name)) {
                Some(object) if table::wanted(&request.accept) => {
                    let now = chrono::Utc::now();
                    Reply::ok(table::of(std::slice::from_ref(object), self.revision, now))
                }
                Some(object) => Reply::ok(object.clone()),
                None => status::not_found(&Target::new("apps", resource, name)),
            },
            ("patch", Some(name)) => self
                .patch_workload(request, resource, namespace, name)
                .unwrap_or_else(|reply| reply),
            (verb, _) => api::unsupported(verb, resource),
        }
    }

    fn list_workloads(&self, request: &Request, resource: &str, namespace: &str) -> Reply {
        let objects: Vec<Value> = self
            .workloads
            .iter()
            .filter(|((r, ns, _), _)| r == resource && ns == namespace)
            .map(|(_, object)| object.clone())
            .collect();
        if table::wanted(&request.accept) {
            return Reply::ok(table::of(&objects, self.revision, chrono::Utc::now()));
        }
        let items: Vec<Value> = objects
            .into_iter()
            .map(|object| {
                let mut item = object;
                if let Some(map) = item.as_object_mut() {
                    map.remove("kind");
                    map.remove("apiVersion");
                }
                item
            })
            .collect();
        Reply::ok(json!({
            "kind": format!("{}List", kind_of(resource)),
            "apiVersion": "apps/v1",
            "metadata": {"resourceVersion": self.revision.to_string()},
            "items": items,
        }))
    }

    /// A merge (or strategic merge, treated alike) patch; identity fields are kept, a changed
    /// spec bumps `metadata.generation`.
    fn patch_workload(
        &mut self,
        request: &Request,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Reply, Reply> {
        let target = Target::new("apps", resource, name);
        let kind = PatchKind::of(request)?;
        if kind == PatchKind::Apply {
            return Err(status::unsupported_media_type(
                "the fake Kubernetes API server applies only merge and strategic merge patches to workloads",
            ));
        }
        kind.check_options(request)?;
        let patch = kind.body(request)?;
        if let Some(directive) = strategic_directive(&patch) {
            return Err(status::bad_request(&format!(
                "the fake Kubernetes API server does not implement the strategic merge directive {directive}"
            )));
        }
        let old = self
            .workloads
            .get(&key(resource, namespace, name))
            .ok_or_else(|| status::not_found(&target))?;
        let stated = &patch["metadata"]["resourceVersion"];
        if !stated.is_null() && *stated != old["metadata"]["resourceVersion"] {
            return Err(status::conflict(&target, status::MODIFIED));
        }
        let mut new = old.clone();
        merge_patch(&mut new, &patch);
        for field in ["kind", "apiVersion"] {
            new[field] = old[field].clone();
        }
        for field in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
        ] {
            new["metadata"][field] = old["metadata"][field].clone();
        }
        for map in [
            &new["metadata"]["labels"],
            &new["metadata"]["annotations"],
            &new["spec"]["template"]["metadata"]["annotations"],
        ] {
            if !(map.is_null()
                || map
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string)))
            {
                return Err(status::bad_request(&format!(
                    "{} in version \"v1\" cannot be handled as a {}: labels and annotations must map strings to strings",
                    kind_of(resource),
                    kind_of(resource)
                )));
            }
        }
        if new == *old {
            return Ok(Reply::ok(new));
        }
        if new["spec"] != old["spec"] {
            let generation = old["metadata"]["generation"].as_u64().unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        if !request.dry_run() {
            new["metadata"]["resourceVersion"] = json!(self.next_revision().to_string());
            self.workloads
                .insert(key(resource, namespace, name), new.clone());
        }
        Ok(Reply::ok(new))
    }
}
