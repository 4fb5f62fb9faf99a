//! Field ownership (`metadata.managedFields`) and server-side apply, per field of a Secret.
//!
//! Per the Kubernetes docs: an Update (create, PUT, merge patch) takes the fields whose values it
//! changed from every other manager; an Apply owns exactly the fields of its applied object,
//! conflicts when it changes a value another manager owns (unless forced, which takes the field
//! over), shares a field when it applies the value already there, and removes the fields it
//! stopped applying that nobody else owns. Update entries also own the `.` of a map they created,
//! as the API server records it; apply entries own leaves only.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::status::{Cause, quote};

/// One field of a Secret that a manager can own, ordered as the API server sorts field paths.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// The `data` map itself (`f:data: {".": {}}`).
    DataMap,
    Data(String),
    Immutable,
    AnnotationsMap,
    Annotation(String),
    LabelsMap,
    Label(String),
    Type,
}

/// An object's (or an applied configuration's) fields with their values; data values in base64.
/// The map fields are present (with an empty value) when their map has entries.
pub type Flat = BTreeMap<Field, String>;

impl Field {
    /// The path as apply conflicts name it: `.data.password`, `.metadata.labels.app`.
    pub fn path(&self) -> String {
        match self {
            Field::Type => ".type".into(),
            Field::Immutable => ".immutable".into(),
            Field::Data(key) => format!(".data.{key}"),
            Field::Label(key) => format!(".metadata.labels.{key}"),
            Field::Annotation(key) => format!(".metadata.annotations.{key}"),
            Field::DataMap => ".data".into(),
            Field::LabelsMap => ".metadata.labels".into(),
            Field::AnnotationsMap => ".metadata.annotations".into(),
        }
    }

    /// The keys leading to it in `fieldsV1`.
    fn fields_v1_keys(&self) -> Vec<String> {
        let metadata =
            |map: &str, key: &str| vec!["f:metadata".into(), format!("f:{map}"), key.to_owned()];
        match self {
            Field::Type => vec!["f:type".into()],
            Field::Immutable => vec!["f:immutable".into()],
            Field::Data(key) => vec!["f:data".into(), format!("f:{key}")],
            Field::DataMap => vec!["f:data".into(), ".".into()],
            Field::Label(key) => metadata("labels", &format!("f:{key}")),
            Field::LabelsMap => metadata("labels", "."),
            Field::Annotation(key) => metadata("annotations", &format!("f:{key}")),
            Field::AnnotationsMap => metadata("annotations", "."),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Managed {
    pub manager: String,
    pub operation: Operation,
    pub time: String,
    pub fields: BTreeSet<Field>,
}

impl Managed {
    fn is(&self, manager: &str, operation: Operation) -> bool {
        self.manager == manager && self.operation == operation
    }

    pub fn to_json(&self) -> Value {
        json!({
            "manager": self.manager,
            "operation": self.operation.name(),
            "apiVersion": "v1",
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(&self.fields),
        })
    }

    /// How the API server names this manager in a conflict: an applier by name, an updater
    /// with the API version it used.
    fn described(&self) -> String {
        match self.operation {
            Operation::Apply => quote(&self.manager),
            Operation::Update => format!("{} using v1", quote(&self.manager)),
        }
    }
}

/// `{"f:data": {".": {}, "f:password": {}}, "f:type": {}}`
fn fields_v1(fields: &BTreeSet<Field>) -> Value {
    let mut root = Map::new();
    for field in fields {
        let mut node = &mut root;
        for key in field.fields_v1_keys() {
            node = node
                .entry(key)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

/// The entry of `manager` with `operation`, added if missing.
fn entry<'a>(
    managed: &'a mut Vec<Managed>,
    manager: &str,
    operation: Operation,
) -> &'a mut Managed {
    let at = match managed.iter().position(|m| m.is(manager, operation)) {
        Some(at) => at,
        None => {
            managed.push(Managed {
                manager: manager.to_owned(),
                operation,
                time: String::new(),
                fields: BTreeSet::new(),
            });
            managed.len() - 1
        }
    };
    &mut managed[at]
}

/// Records an Update by `manager` that turned `old` into `new`.
pub fn update(managed: &mut Vec<Managed>, old: &Flat, new: &Flat, manager: &str, now: &str) {
    let changed: BTreeSet<Field> = new
        .iter()
        .filter(|(field, value)| old.get(*field) != Some(*value))
        .map(|(field, _)| field.clone())
        .collect();
    for other in managed
        .iter_mut()
        .filter(|m| !m.is(manager, Operation::Update))
    {
        other.fields.retain(|f| !changed.contains(f));
    }
    if !changed.is_empty() {
        let mine = entry(managed, manager, Operation::Update);
        mine.fields.extend(changed);
        mine.time = now.to_owned();
    }
    prune(managed, new);
}

/// Fields another manager owns that an apply would change.
#[derive(Debug)]
pub struct Conflicts(pub Vec<(String, Field)>);

impl Conflicts {
    /// `Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.password`
    pub fn message(&self) -> String {
        if let [(owner, field)] = self.0.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {owner}: {}",
                field.path()
            );
        }
        let mut by_owner: BTreeMap<&str, Vec<&Field>> = BTreeMap::new();
        for (owner, field) in &self.0 {
            by_owner.entry(owner).or_default().push(field);
        }
        let mut lines = Vec::new();
        for (owner, fields) in by_owner {
            lines.push(format!("conflicts with {owner}:"));
            lines.extend(fields.iter().map(|f| format!("- {}", f.path())));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }

    pub fn causes(&self) -> Vec<Cause> {
        self.0
            .iter()
            .map(|(owner, field)| Cause {
                reason: "FieldManagerConflict",
                field: field.path(),
                message: format!("conflict with {owner}"),
            })
            .collect()
    }
}

/// Records an Apply of `config` by `manager` onto an object whose fields are `live`. Returns the
/// fields to remove from the object (the applier's former fields nobody owns any more); the
/// caller then sets every field of `config`.
pub fn apply(
    managed: &mut Vec<Managed>,
    live: &Flat,
    config: &Flat,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Vec<Field>, Conflicts> {
    let mut conflicts = Vec::new();
    for (field, value) in config {
        if live.get(field) == Some(value) {
            continue; // the same value: shared ownership
        }
        for other in managed.iter().filter(|m| !m.is(manager, Operation::Apply)) {
            if other.fields.contains(field) {
                conflicts.push((other.described(), field.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(Conflicts(conflicts));
    }
    for other in managed
        .iter_mut()
        .filter(|m| !m.is(manager, Operation::Apply))
    {
        other
            .fields
            .retain(|f| !config.contains_key(f) || live.get(f) == config.get(f));
    }
    let before = entry(managed, manager, Operation::Apply).fields.clone();
    let removed = before
        .into_iter()
        .filter(|field| !config.contains_key(field))
        .filter(|field| {
            !managed
                .iter()
                .any(|m| !m.is(manager, Operation::Apply) && m.fields.contains(field))
        })
        .collect();
    let mine = entry(managed, manager, Operation::Apply);
    mine.fields = config.keys().cloned().collect();
    mine.time = now.to_owned();
    Ok(removed)
}

/// Drops owned fields the object no longer has, then managers that own nothing.
pub fn prune(managed: &mut Vec<Managed>, present: &Flat) {
    for m in managed.iter_mut() {
        m.fields.retain(|f| present.contains_key(f));
    }
    managed.retain(|m| !m.fields.is_empty());
}

/// Whether two managedFields lists record the same ownership (times aside).
pub fn same_ownership(a: &[Managed], b: &[Managed]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.manager == y.manager && x.operation == y.operation && x.fields == y.fields
        })
}
