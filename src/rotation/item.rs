//! The section opsync owns in a rotated 1Password item (`opsync rotation`): pending and previous
//! values per rotated field and the rotation's non-secret metadata; reading it, and the PATCH
//! documents that write pending values, promote them, and clear them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::connect::model::{
    Field, FieldPurpose, GeneratorRecipe, Item, PatchOp, PatchOpKind, SecretString,
};
use crate::plugin::NewValue;
use crate::rotation::error::RotationError;

/// The section's id and label.
pub const SECTION_ID: &str = "opsync_rotation";
pub const SECTION_LABEL: &str = "opsync rotation";

/// Metadata fields (plain strings, never secret).
pub const KEY_FIELD: &str = "opsync_rotation_key";
pub const LAST_KEY_FIELD: &str = "opsync_rotation_last_key";
pub const JOB_FIELD: &str = "opsync_rotation_job";
pub const SLOT_FIELD: &str = "opsync_rotation_slot";
pub const STARTED_FIELD: &str = "opsync_rotation_started";
pub const STATE_FIELD: &str = "opsync_rotation_state";
pub const ROTATED_AT_FIELD: &str = "opsync_rotated_at";

/// The pending value's field id for target field `id`.
pub fn pending_id(id: &str) -> String {
    format!("opsync_pending_{id}")
}

/// The previous value's field id for target field `id`.
pub fn previous_id(id: &str) -> String {
    format!("opsync_previous_{id}")
}

/// A field being rotated: its id and label in the item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub label: String,
}

fn in_section(f: &Field) -> bool {
    f.section.as_ref().is_some_and(|s| s.id == SECTION_ID)
}

fn fields(item: &Item) -> &[Field] {
    item.fields.as_deref().unwrap_or_default()
}

fn by_id<'a>(item: &'a Item, id: &str) -> Option<&'a Field> {
    fields(item).iter().find(|f| f.id == id)
}

fn text(item: &Item, id: &str) -> Option<String> {
    by_id(item, id)
        .and_then(|f| f.value.as_ref())
        .map(|v| v.expose().to_owned())
        .filter(|v| !v.is_empty())
}

/// The fields `wanted` names (id or label, outside opsync's section), or by default the item's
/// PASSWORD-purpose field.
pub fn targets(item: &Item, wanted: &[String], job: &str) -> Result<Vec<Target>, RotationError> {
    let candidates: Vec<&Field> = fields(item).iter().filter(|f| !in_section(f)).collect();
    let to_target = |f: &Field| Target {
        id: f.id.clone(),
        label: f.label.clone().unwrap_or_else(|| f.id.clone()),
    };
    if wanted.is_empty() {
        return candidates
            .iter()
            .find(|f| f.purpose == Some(FieldPurpose::Password))
            .map(|f| vec![to_target(f)])
            .ok_or_else(|| RotationError::NoField {
                job: job.to_owned(),
                field: "the PASSWORD-purpose field".into(),
            });
    }
    let mut out: Vec<Target> = Vec::new();
    for w in wanted {
        let f = candidates
            .iter()
            .find(|f| f.id == *w)
            .or_else(|| {
                candidates.iter().find(|f| {
                    f.label
                        .as_deref()
                        .is_some_and(|l| l.eq_ignore_ascii_case(w))
                })
            })
            .ok_or_else(|| RotationError::NoField {
                job: job.to_owned(),
                field: format!("field {w:?}"),
            })?;
        if !out.iter().any(|t| t.id == f.id) {
            out.push(to_target(f));
        }
    }
    Ok(out)
}

/// The item as plugins see it: without opsync's section.
pub fn for_plugin(item: &Item) -> Item {
    let mut item = item.clone();
    strip_owned_section(&mut item);
    item
}

/// Removes opsync's rotation section (pending and previous values, rotation metadata) from an
/// item, in place. `Route::shape` does this before the field selection, so a pending value that a
/// rotation may still roll back never leaves through a destination.
pub fn strip_owned_section(item: &mut Item) {
    if let Some(fields) = &mut item.fields {
        fields.retain(|f| !in_section(f));
    }
    if let Some(sections) = &mut item.sections {
        sections.retain(|s| s.id != SECTION_ID);
    }
}

/// Where the item stands for the rotation keyed `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holds {
    /// Pending values of this rotation, for every target.
    Pending,
    /// This rotation was already promoted.
    Promoted,
    /// Neither (nothing yet, or another rotation's leftovers).
    Nothing,
}

pub fn holds(item: &Item, key: &str, targets: &[Target]) -> Holds {
    if text(item, KEY_FIELD).as_deref() == Some(key)
        && targets
            .iter()
            .all(|t| text(item, &pending_id(&t.id)).is_some())
    {
        Holds::Pending
    } else if text(item, LAST_KEY_FIELD).as_deref() == Some(key) {
        Holds::Promoted
    } else {
        Holds::Nothing
    }
}

/// The pending values (requires [`Holds::Pending`]).
pub fn pending(item: &Item, targets: &[Target]) -> Vec<NewValue> {
    targets
        .iter()
        .filter_map(|t| {
            by_id(item, &pending_id(&t.id))
                .and_then(|f| f.value.clone())
                .map(|value| NewValue {
                    field: t.id.clone(),
                    value,
                })
        })
        .collect()
}

/// The targets' current values.
pub fn current(item: &Item, targets: &[Target]) -> Vec<NewValue> {
    targets
        .iter()
        .map(|t| NewValue {
            field: t.id.clone(),
            value: by_id(item, &t.id)
                .and_then(|f| f.value.clone())
                .unwrap_or_default(),
        })
        .collect()
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn set_field(id: &str, label: &str, field_type: &str, value: Option<&str>) -> PatchOp {
    let mut f = json!({
        "id": id,
        "type": field_type,
        "label": label,
        "section": {"id": SECTION_ID},
    });
    if let Some(v) = value {
        f["value"] = Value::String(v.to_owned());
    }
    PatchOp {
        op: PatchOpKind::Add,
        path: format!("/fields/{id}"),
        value: Some(f),
    }
}

fn meta(id: &str, label: &str, value: &str) -> PatchOp {
    set_field(id, label, "STRING", Some(value))
}

fn remove(item: &Item, id: &str, ops: &mut Vec<PatchOp>) {
    if by_id(item, id).is_some() {
        ops.push(PatchOp {
            op: PatchOpKind::Remove,
            path: format!("/fields/{id}"),
            value: None,
        });
    }
}

fn ensure_section(item: &Item, ops: &mut Vec<PatchOp>) {
    let has = item
        .sections
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|s| s.id == SECTION_ID);
    if !has {
        ops.push(PatchOp {
            op: PatchOpKind::Add,
            path: "/sections".into(),
            value: Some(json!({"id": SECTION_ID, "label": SECTION_LABEL})),
        });
    }
}

/// Rotation metadata for the pending write.
pub struct PendingMeta<'a> {
    pub key: &'a str,
    pub job: &'a str,
    pub slot: DateTime<Utc>,
    pub started: DateTime<Utc>,
}

/// One PATCH writing the pending values: the plugin's (`given`, by target id) or, for targets
/// it gave none, a value Connect generates from `recipe`. The host never holds the only copy of
/// a generated value, and a plugin-made one is in 1Password before anything touches the target.
pub fn write_pending(
    item: &Item,
    targets: &[Target],
    given: &[NewValue],
    recipe: Option<&GeneratorRecipe>,
    m: &PendingMeta<'_>,
) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    ensure_section(item, &mut ops);
    for t in targets {
        let id = pending_id(&t.id);
        let label = format!("pending {}", t.label);
        match given.iter().find(|v| v.field == t.id) {
            Some(v) => ops.push(set_field(&id, &label, "CONCEALED", Some(v.value.expose()))),
            None => {
                let mut op = set_field(&id, &label, "CONCEALED", None);
                if let Some(f) = op.value.as_mut() {
                    f["generate"] = Value::Bool(true);
                    if let Some(r) = recipe
                        && let Ok(r) = serde_json::to_value(r)
                    {
                        f["recipe"] = r;
                    }
                }
                ops.push(op);
            }
        }
    }
    ops.push(meta(KEY_FIELD, "rotation key", m.key));
    ops.push(meta(JOB_FIELD, "rotation job", m.job));
    ops.push(meta(SLOT_FIELD, "rotation slot", &stamp(m.slot)));
    ops.push(meta(STARTED_FIELD, "rotation started", &stamp(m.started)));
    ops.push(meta(STATE_FIELD, "rotation state", "pending"));
    ops
}

/// One PATCH promoting: pending to current, current to previous, pending removed.
pub fn promote(item: &Item, targets: &[Target], key: &str, now: DateTime<Utc>) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    ensure_section(item, &mut ops);
    for t in targets {
        let new = text(item, &pending_id(&t.id));
        let old = by_id(item, &t.id)
            .and_then(|f| f.value.as_ref())
            .map(SecretString::expose);
        ops.push(set_field(
            &previous_id(&t.id),
            &format!("previous {}", t.label),
            "CONCEALED",
            old,
        ));
        if let Some(new) = new {
            ops.push(PatchOp {
                op: PatchOpKind::Replace,
                path: format!("/fields/{}/value", t.id),
                value: Some(Value::String(new)),
            });
        }
        remove(item, &pending_id(&t.id), &mut ops);
    }
    remove(item, KEY_FIELD, &mut ops);
    ops.push(meta(LAST_KEY_FIELD, "last rotation key", key));
    ops.push(meta(STATE_FIELD, "rotation state", "promoted"));
    ops.push(meta(ROTATED_AT_FIELD, "last rotated", &stamp(now)));
    ops
}

/// One PATCH dropping the pending values after a rollback (empty when there is nothing to drop).
pub fn clear_pending(item: &Item, targets: &[Target], key: &str) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    if text(item, KEY_FIELD).as_deref() != Some(key) {
        return ops;
    }
    for t in targets {
        remove(item, &pending_id(&t.id), &mut ops);
    }
    remove(item, KEY_FIELD, &mut ops);
    ops.push(meta(STATE_FIELD, "rotation state", "rolled back"));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::model::{Category, FieldType, IdRef, Section};

    fn field(id: &str, purpose: Option<FieldPurpose>, value: &str, section: Option<&str>) -> Field {
        Field {
            id: id.into(),
            field_type: FieldType::Concealed,
            section: section.map(|s| IdRef { id: s.into() }),
            purpose,
            label: Some(id.into()),
            value: Some(value.into()),
            generate: false,
            recipe: None,
            entropy: None,
            totp: None,
        }
    }

    fn item() -> Item {
        let mut i = Item::new("db", Category::Login);
        i.fields = Some(vec![
            field("username", Some(FieldPurpose::Username), "admin", None),
            field("password", Some(FieldPurpose::Password), "old", None),
            field("api", None, "k1", None),
        ]);
        i
    }

    #[test]
    fn default_target_is_the_password_field() {
        let t = targets(&item(), &[], "j").expect("targets");
        assert_eq!(
            t,
            vec![Target {
                id: "password".into(),
                label: "password".into()
            }]
        );
        let t = targets(&item(), &["API".into(), "password".into()], "j").expect("targets");
        assert_eq!(t.len(), 2);
        let e = targets(&item(), &["nope".into()], "j").expect_err("missing");
        assert!(e.to_string().contains("\"nope\""), "{e}");
    }

    #[test]
    fn pending_then_promote_documents() {
        let i = item();
        let t = targets(&i, &[], "j").expect("t");
        let now = Utc::now();
        let ops = write_pending(
            &i,
            &t,
            &[],
            None,
            &PendingMeta {
                key: "k",
                job: "j",
                slot: now,
                started: now,
            },
        );
        assert_eq!(ops[0].path, "/sections");
        let pend = &ops[1];
        assert_eq!(pend.path, "/fields/opsync_pending_password");
        let v = pend.value.as_ref().expect("value");
        assert_eq!(v["generate"], true);
        assert!(v.get("value").is_none());

        // The item as Connect returns it after that PATCH.
        let mut after = i.clone();
        after.sections = Some(vec![Section {
            id: SECTION_ID.into(),
            label: Some(SECTION_LABEL.into()),
        }]);
        let fs = after.fields.as_mut().expect("fields");
        fs.push(field(
            "opsync_pending_password",
            None,
            "new",
            Some(SECTION_ID),
        ));
        let mut key = field(KEY_FIELD, None, "k", Some(SECTION_ID));
        key.field_type = FieldType::String;
        fs.push(key);
        assert_eq!(holds(&after, "k", &t), Holds::Pending);
        assert_eq!(holds(&after, "other", &t), Holds::Nothing);
        assert_eq!(pending(&after, &t)[0].value.expose(), "new");
        assert_eq!(for_plugin(&after).fields.expect("f").len(), 3);

        let ops = promote(&after, &t, "k", now);
        let paths: Vec<(&str, &PatchOpKind)> =
            ops.iter().map(|o| (o.path.as_str(), &o.op)).collect();
        assert!(paths.contains(&("/fields/opsync_previous_password", &PatchOpKind::Add)));
        assert!(paths.contains(&("/fields/password/value", &PatchOpKind::Replace)));
        assert!(paths.contains(&("/fields/opsync_pending_password", &PatchOpKind::Remove)));
        assert!(paths.contains(&("/fields/opsync_rotation_key", &PatchOpKind::Remove)));
        let prev = ops
            .iter()
            .find(|o| o.path == "/fields/opsync_previous_password")
            .expect("prev");
        assert_eq!(prev.value.as_ref().expect("v")["value"], "old");

        assert!(clear_pending(&after, &t, "other").is_empty());
        assert_eq!(clear_pending(&after, &t, "k").len(), 3);
    }
}
