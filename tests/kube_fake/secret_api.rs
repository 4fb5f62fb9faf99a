//! The Secret endpoints (list, get, create, update, patch, apply, delete) and seeding calls.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::api::{self, PatchKind, Request, State};
use super::merge::{merge_patch, strategic_directive};
use super::secret::{Body, Secret};
use super::selector::Selector;
use super::ssa;
use super::status::{self, Reply, Target};
use super::table;
use super::validate;

fn target(name: &str) -> Target {
    Target::new("", "secrets", name)
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_owned(), name.to_owned())
}

impl State {
    /// `/api/v1/namespaces/{namespace}/secrets[/{name}]`, once `verb` is authorized.
    pub fn secret_endpoint(
        &mut self,
        request: &Request,
        namespace: &str,
        name: Option<&str>,
        verb: &str,
    ) -> Reply {
        match (verb, name) {
            ("list", None) => self.list_secrets(request, namespace),
            ("get", Some(name)) => self.get_secret(request, namespace, name),
            ("create", None) => match request.json_body() {
                Ok(body) => {
                    self.create_secret(namespace, &body, &request.manager(), request.dry_run())
                }
                Err(reply) => reply,
            },
            ("update", Some(name)) => match request.json_body().and_then(|b| decode(&b)) {
                Ok(body) => self.replace_secret(
                    namespace,
                    name,
                    body,
                    &request.manager(),
                    request.dry_run(),
                ),
                Err(reply) => reply,
            },
            ("patch", Some(name)) => self
                .patch_secret(request, namespace, name)
                .unwrap_or_else(|reply| reply),
            ("delete", Some(name)) => self
                .delete_secret_request(request, namespace, name)
                .unwrap_or_else(|reply| reply),
            (verb, _) => api::unsupported(verb, "secrets"),
        }
    }

    /// `labelSelector`, `fieldSelector`, and `limit`/`continue` paging by name.
    fn list_secrets(&self, request: &Request, namespace: &str) -> Reply {
        let labels = Selector::labels(request.param("labelSelector").unwrap_or_default());
        let fields = Selector::fields(request.param("fieldSelector").unwrap_or_default());
        let (labels, fields) = match (labels, fields) {
            (Ok(labels), Ok(fields)) => (labels, fields),
            (Err(why), _) | (_, Err(why)) => return status::bad_request(&why),
        };
        let after = match request.param("continue").filter(|c| !c.is_empty()) {
            None => String::new(),
            Some(token) => match STANDARD
                .decode(token)
                .ok()
                .and_then(|t| String::from_utf8(t).ok())
            {
                Some(last) => last,
                None => {
                    return status::bad_request("continue key is not valid: illegal base64 data");
                }
            },
        };
        let matching: Vec<&Secret> = self
            .secrets
            .values()
            .filter(|s| s.namespace == namespace && s.name > after)
            .filter(|s| labels.matches(&s.labels))
            .filter(|s| {
                let values = [
                    ("metadata.name", &s.name),
                    ("metadata.namespace", &s.namespace),
                    ("type", &s.type_),
                ];
                fields.matches(
                    &values
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect();
        let limit = request
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let page = &matching[..matching.len().min(limit)];
        if table::wanted(&request.accept) {
            let objects: Vec<Value> = page.iter().map(|s| s.to_json()).collect();
            return Reply::ok(table::of(&objects, self.revision, chrono::Utc::now()));
        }
        let mut metadata = json!({"resourceVersion": self.revision.to_string()});
        if let Some(last) = page.last().filter(|_| page.len() < matching.len()) {
            metadata["continue"] = json!(STANDARD.encode(&last.name));
            metadata["remainingItemCount"] = json!(matching.len() - page.len());
        }
        Reply::ok(json!({
            "kind": "SecretList",
            "apiVersion": "v1",
            "metadata": metadata,
            "items": page.iter().map(|s| s.to_item()).collect::<Vec<_>>(),
        }))
    }

    fn get_secret(&self, request: &Request, namespace: &str, name: &str) -> Reply {
        match self.secrets.get(&key(namespace, name)) {
            None => status::not_found(&target(name)),
            Some(secret) if table::wanted(&request.accept) => Reply::ok(table::of(
                &[secret.to_json()],
                self.revision,
                chrono::Utc::now(),
            )),
            Some(secret) => Reply::ok(secret.to_json()),
        }
    }

    /// POST: a new Secret, owned (operation Update) by `manager`.
    pub fn create_secret(
        &mut self,
        namespace: &str,
        body: &Value,
        manager: &str,
        dry_run: bool,
    ) -> Reply {
        let body = match decode(body) {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        if let Err(reply) = same_namespace(&body, namespace) {
            return reply;
        }
        let name = match (body.name.as_str(), body.generate_name.as_str()) {
            ("", "") => {
                let cause =
                    status::Cause::required("metadata.name", "name or generateName is required");
                return status::invalid("Secret", "", "", &[cause]);
            }
            ("", prefix) => format!("{prefix}{}", random_suffix()),
            (name, _) => name.to_owned(),
        };
        let now = api::now();
        let mut new = Secret::blank(namespace, &name, api::new_uid(), &now);
        new.replace_content(body);
        let causes = validate::secret(None, &new);
        if !causes.is_empty() {
            return status::invalid("Secret", "", &name, &causes);
        }
        if self.secrets.contains_key(&key(namespace, &name)) {
            return status::already_exists(&target(&name));
        }
        let flat = new.flat();
        ssa::update(&mut new.managed, &Default::default(), &flat, manager, &now);
        self.commit(None, new, dry_run)
    }

    /// PUT (and a merge patch's result): the whole content of `name` replaced by `body`.
    pub fn replace_secret(
        &mut self,
        namespace: &str,
        name: &str,
        body: Body,
        manager: &str,
        dry_run: bool,
    ) -> Reply {
        if body.name != name {
            return status::bad_request(&format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body.name
            ));
        }
        if let Err(reply) = same_namespace(&body, namespace) {
            return reply;
        }
        let Some(old) = self.secrets.get(&key(namespace, name)).cloned() else {
            return status::not_found(&target(name));
        };
        if let Err(reply) =
            preconditions(&old, body.resource_version.as_deref(), body.uid.as_deref())
        {
            return reply;
        }
        let mut new = old.clone();
        new.replace_content(body);
        let causes = validate::secret(Some(&old), &new);
        if !causes.is_empty() {
            return status::invalid("Secret", "", name, &causes);
        }
        let (before, after) = (old.flat(), new.flat());
        ssa::update(&mut new.managed, &before, &after, manager, &api::now());
        self.commit(Some(&old), new, dry_run)
    }

    fn patch_secret(
        &mut self,
        request: &Request,
        namespace: &str,
        name: &str,
    ) -> Result<Reply, Reply> {
        let kind = PatchKind::of(request)?;
        kind.check_options(request)?;
        let patch = kind.body(request)?;
        let manager = request.manager();
        if kind == PatchKind::Apply {
            return Ok(self.apply_secret(
                namespace,
                name,
                &patch,
                &manager,
                request.flag("force"),
                request.dry_run(),
            ));
        }
        if let Some(directive) =
            strategic_directive(&patch).filter(|_| kind == PatchKind::Strategic)
        {
            return Err(status::bad_request(&format!(
                "the fake Kubernetes API server does not implement the strategic merge directive {directive}"
            )));
        }
        let old = self
            .secrets
            .get(&key(namespace, name))
            .ok_or_else(|| status::not_found(&target(name)))?;
        let mut patched = old.to_json();
        merge_patch(&mut patched, &patch);
        let body = decode(&patched)?;
        Ok(self.replace_secret(namespace, name, body, &manager, request.dry_run()))
    }

    /// Server-side apply of `config` by `manager`; creates the Secret when missing.
    pub fn apply_secret(
        &mut self,
        namespace: &str,
        name: &str,
        config: &Value,
        manager: &str,
        force: bool,
        dry_run: bool,
    ) -> Reply {
        if config["apiVersion"] != "v1" || config["kind"] != "Secret" {
            return status::bad_request(&format!(
                "an apply configuration must set apiVersion \"v1\" and kind \"Secret\", this one has apiVersion {} and kind {}",
                config["apiVersion"], config["kind"]
            ));
        }
        let body = match decode(config) {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        if !body.name.is_empty() && body.name != name {
            return status::bad_request(&format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body.name
            ));
        }
        if let Err(reply) = same_namespace(&body, namespace) {
            return reply;
        }
        let old = self.secrets.get(&key(namespace, name)).cloned();
        if let Some(old) = &old
            && let Err(reply) =
                preconditions(old, body.resource_version.as_deref(), body.uid.as_deref())
        {
            return reply;
        }
        let now = api::now();
        let mut new = old
            .clone()
            .unwrap_or_else(|| Secret::blank(namespace, name, api::new_uid(), &now));
        let (live, applied) = (new.flat(), body.flat());
        match ssa::apply(&mut new.managed, &live, &applied, manager, force, &now) {
            Err(conflicts) => {
                return status::apply_conflict(&conflicts.message(), &conflicts.causes());
            }
            Ok(removed) => removed.iter().for_each(|field| new.unset(field)),
        }
        for (field, value) in &applied {
            new.set(field, value);
        }
        new.default_type();
        let causes = validate::secret(old.as_ref(), &new);
        if !causes.is_empty() {
            return status::invalid("Secret", "", name, &causes);
        }
        let present = new.flat();
        ssa::prune(&mut new.managed, &present);
        self.commit(old.as_ref(), new, dry_run)
    }

    /// DELETE, honouring a DeleteOptions body's `preconditions`.
    fn delete_secret_request(
        &mut self,
        request: &Request,
        namespace: &str,
        name: &str,
    ) -> Result<Reply, Reply> {
        let old = self
            .secrets
            .get(&key(namespace, name))
            .ok_or_else(|| status::not_found(&target(name)))?;
        if !request.body.is_empty() {
            let options = request.json_body()?;
            let wanted = |k: &str| options["preconditions"][k].as_str().map(str::to_owned);
            preconditions(old, None, wanted("uid").as_deref())?;
            let current = old.resource_version.to_string();
            if let Some(stated) = wanted("resourceVersion").filter(|rv| *rv != current) {
                let why = format!(
                    "Precondition failed: ResourceVersion in precondition: {stated}, ResourceVersion in object meta: {current}"
                );
                return Err(status::conflict(&target(name), &why));
            }
        }
        let reply = status::deleted(&target(name), &old.uid);
        if !request.dry_run() {
            self.secrets.remove(&key(namespace, name));
            self.next_revision();
        }
        Ok(reply)
    }

    /// Stores `new` (unless nothing changed: then no write and no new resourceVersion).
    fn commit(&mut self, old: Option<&Secret>, mut new: Secret, dry_run: bool) -> Reply {
        if let Some(old) = old
            && old.same_as(&new)
        {
            return Reply::ok(old.to_json());
        }
        if !dry_run {
            new.resource_version = self.next_revision();
            self.secrets
                .insert(key(&new.namespace, &new.name), new.clone());
        }
        match old {
            Some(_) => Reply::ok(new.to_json()),
            None => Reply::created(new.to_json()),
        }
    }

    /// Seeding: creates (or replaces) `name` from `secret` as `manager` (operation Update).
    pub fn put_secret(
        &mut self,
        namespace: &str,
        name: &str,
        manager: &str,
        mut secret: Value,
    ) -> Reply {
        secret["metadata"]["name"] = json!(name);
        secret["metadata"]["namespace"] = json!(namespace);
        if !self.secrets.contains_key(&key(namespace, name)) {
            return self.create_secret(namespace, &secret, manager, false);
        }
        match decode(&secret) {
            Ok(body) => self.replace_secret(namespace, name, body, manager, false),
            Err(reply) => reply,
        }
    }

    /// Seeding: a person's `kubectl edit` of one data value.
    pub fn edit_secret_data(
        &mut self,
        namespace: &str,
        name: &str,
        data_key: &str,
        value: &[u8],
        manager: &str,
    ) -> Reply {
        let Some(old) = self.secrets.get(&key(namespace, name)) else {
            return status::not_found(&target(name));
        };
        let mut edited = old.to_json();
        edited["data"][data_key] = json!(STANDARD.encode(value));
        match decode(&edited) {
            Ok(body) => self.replace_secret(namespace, name, body, manager, false),
            Err(reply) => reply,
        }
    }
}

fn decode(value: &Value) -> Result<Body, Reply> {
    Body::decode(value).map_err(|why| status::bad_request(&why))
}

fn same_namespace(body: &Body, namespace: &str) -> Result<(), Reply> {
    match body.namespace.as_deref() {
        Some(stated) if !stated.is_empty() && stated != namespace => {
            Err(status::bad_request(&format!(
                "the namespace of the provided object ({stated}) does not match the namespace sent on the request ({namespace})"
            )))
        }
        _ => Ok(()),
    }
}

/// A stated resourceVersion or uid must be the object's.
fn preconditions(
    old: &Secret,
    resource_version: Option<&str>,
    uid: Option<&str>,
) -> Result<(), Reply> {
    let current = old.resource_version.to_string();
    if let Some(uid) = uid.filter(|uid| *uid != old.uid) {
        let why = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            old.uid
        );
        return Err(status::conflict(&target(&old.name), &why));
    }
    if resource_version.is_some_and(|rv| rv != current) {
        return Err(status::conflict(&target(&old.name), status::MODIFIED));
    }
    Ok(())
}

/// generateName's five random characters.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random::<usize>() % ALPHABET.len()] as char)
        .collect()
}
