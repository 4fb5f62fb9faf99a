//! PATCH of an item: Connect's subset of RFC 6902 JSON Patch, with fields and sections addressed by id.
//!
//! Supported: `add`, `remove`, `replace` on `/` (merge of item attributes, like a PUT of the
//! attributes given), item attributes (`/title`, `/favorite`, `/tags`, `/tags/1`, `/urls/0/href`),
//! `/fields` and `/sections` (append with `add`), `/fields/{id}` (a whole field) and
//! `/fields/{id}/{attr}...` (part of one). As RFC 6902 says (4.2, 4.3), `remove` and `replace`
//! need their target to exist: a path that names nothing is a 400 naming it, and the item is left
//! as it was. An attribute the model has but the item leaves unset (and so out of its JSON) counts
//! as there for `replace`, so `replace /fields/password/value` works on a field that has no value
//! yet; `remove` of it is refused. The patched document then goes through the same checks as a
//! PUT.

use serde_json::{Map, Value};

use crate::connect::model::Item;

use super::error::ApiError;
use super::items::parse_json;

/// Attributes the server owns; patching them is refused.
const READ_ONLY: &[&str] = &[
    "id",
    "vault",
    "version",
    "createdAt",
    "updatedAt",
    "lastEditedBy",
    "files",
    "state",
];
/// Arrays whose elements are addressed by their `id`.
const BY_ID: &[(&str, &str)] = &[("fields", "field"), ("sections", "section")];
/// More operations than this in one request is refused.
const MAX_OPS: usize = 1000;

/// The kind of object a path lands in: which of its attributes may be unset (and so absent from
/// its JSON) while still being attributes `replace` can set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Item,
    Urls,
    Url,
    Field,
    Recipe,
    Section,
    Other,
}

impl Shape {
    /// The shape of the member `segment` of an object (or element of an array) of this shape.
    fn child(self, segment: &str) -> Self {
        match (self, segment) {
            (Self::Item, "urls") => Self::Urls,
            (Self::Urls, _) => Self::Url,
            (Self::Field, "recipe") => Self::Recipe,
            _ => Self::Other,
        }
    }

    /// Attributes left out of the JSON when unset (`skip_serializing_if` in the model); the
    /// item's own are always there (`urls` and `tags` are added empty before patching).
    fn optional(self) -> &'static [&'static str] {
        match self {
            Self::Url => &["label", "primary"],
            Self::Field => &[
                "section", "purpose", "label", "value", "generate", "recipe", "entropy",
            ],
            Self::Recipe => &["length", "characterSets", "excludeCharacters"],
            Self::Section => &["label"],
            Self::Item | Self::Urls | Self::Other => &[],
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

struct Operation {
    op: Op,
    path: Vec<String>,
    raw_path: String,
    value: Option<Value>,
}

/// Parses a PATCH body: a JSON array of `{op, path, value}`.
fn parse_document(body: &[u8]) -> Result<Vec<Operation>, ApiError> {
    let doc: Value = parse_json(body, "patch document")?;
    let Value::Array(ops) = doc else {
        return Err(ApiError::bad_request(
            "Invalid JSON Patch document: expected an array of operations",
        ));
    };
    if ops.len() > MAX_OPS {
        return Err(ApiError::bad_request(format!(
            "Invalid JSON Patch document: more than {MAX_OPS} operations"
        )));
    }
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| parse_operation(i, op))
        .collect()
}

fn parse_operation(index: usize, op: Value) -> Result<Operation, ApiError> {
    let bad = |what: String| {
        ApiError::bad_request(format!("Invalid JSON Patch operation {index}: {what}"))
    };
    let Value::Object(mut obj) = op else {
        return Err(bad("expected an object with op and path".to_owned()));
    };
    let kind = match obj.get("op") {
        Some(Value::String(s)) => match s.as_str() {
            "add" => Op::Add,
            "remove" => Op::Remove,
            "replace" => Op::Replace,
            "move" | "copy" | "test" => {
                return Err(bad(format!(
                    "op \"{s}\" is not supported (use add, remove or replace)"
                )));
            }
            _ => return Err(bad("op must be add, remove or replace".to_owned())),
        },
        Some(_) => return Err(bad("op must be a string".to_owned())),
        None => return Err(bad("op is missing".to_owned())),
    };
    let raw_path = match obj.get("path") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("path must be a string".to_owned())),
        None => return Err(bad("path is missing".to_owned())),
    };
    let Some(pointer) = raw_path.strip_prefix('/') else {
        return Err(bad(format!(
            "path \"{}\" must start with /",
            clip(&raw_path)
        )));
    };
    let path = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let value = obj.remove("value");
    if kind != Op::Remove && value.is_none() {
        return Err(bad(format!("{} needs a value", clip(&raw_path))));
    }
    Ok(Operation {
        op: kind,
        path,
        raw_path,
        value,
    })
}

/// Applies the PATCH `body` to `item` and returns the patched item, not yet checked, or `None`
/// for an empty document ("if no Patch operations were provided, Item is unmodified").
pub fn apply(item: &Item, body: &[u8]) -> Result<Option<Item>, ApiError> {
    let ops = parse_document(body)?;
    if ops.is_empty() {
        return Ok(None);
    }
    let mut doc = serde_json::to_value(item).map_err(|_| ApiError::internal())?;
    let Value::Object(root) = &mut doc else {
        return Err(ApiError::internal());
    };
    for key in ["tags", "urls", "fields", "sections"] {
        root.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    }
    for op in ops {
        apply_one(root, op)?;
    }
    for key in ["fields", "sections"] {
        if root
            .get(key)
            .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
        {
            root.remove(key);
        }
    }
    let bytes = serde_json::to_vec(&doc).map_err(|_| ApiError::internal())?;
    let mut patched: Item = parse_json(&bytes, "item after the patch")?;
    // Whatever the patch did, these stay the server's.
    patched.id = item.id.clone();
    Ok(Some(patched))
}

fn apply_one(root: &mut Map<String, Value>, op: Operation) -> Result<(), ApiError> {
    let bad_path = |why: &str| {
        ApiError::bad_request(format!(
            "Invalid JSON Patch path \"{}\": {why}",
            clip(&op.raw_path)
        ))
    };
    let Some(first) = op.path.first() else {
        // The whole item: merge the attributes given.
        let Some(Value::Object(attrs)) = op.value else {
            return Err(bad_path(match op.op {
                Op::Remove => "the item itself cannot be removed",
                _ => "the value for / must be an object of item attributes",
            }));
        };
        for (key, value) in attrs {
            if !READ_ONLY.contains(&key.as_str()) {
                root.insert(key, value);
            }
        }
        return Ok(());
    };
    if READ_ONLY.contains(&first.as_str()) {
        return Err(bad_path("this attribute is read-only"));
    }
    if let Some((_, noun)) = BY_ID.iter().find(|(key, _)| key == first) {
        let Some(Value::Array(list)) = root.get_mut(first.as_str()) else {
            return Err(bad_path("not an array"));
        };
        return apply_by_id(list, noun, &op)
            .map_err(|e| e.unwrap_or_else(|| bad_path("does not exist")));
    }
    let value = op.value.clone();
    apply_pointer(root, Shape::Item, &op.path, op.op, value).map_err(bad_path)
}

/// `/fields...` or `/sections...`; `Err(None)` means "the path does not exist".
fn apply_by_id(list: &mut Vec<Value>, noun: &str, op: &Operation) -> Result<(), Option<ApiError>> {
    let shape = if noun == "field" {
        Shape::Field
    } else {
        Shape::Section
    };
    let rest = &op.path[1..];
    let Some(id) = rest.first() else {
        // The whole array.
        return match (op.op, op.value.clone()) {
            (Op::Add, Some(Value::Object(obj))) => {
                list.push(Value::Object(obj));
                Ok(())
            }
            (Op::Add | Op::Replace, Some(Value::Array(all))) => {
                *list = all;
                Ok(())
            }
            (Op::Remove, _) => {
                list.clear();
                Ok(())
            }
            _ => Err(Some(ApiError::bad_request(format!(
                "Invalid JSON Patch value for {}: expected a {noun} object or an array",
                clip(&op.raw_path)
            )))),
        };
    };
    let position = list
        .iter()
        .position(|v| v.get("id").and_then(Value::as_str) == Some(id.as_str()));
    let missing = || {
        Some(ApiError::bad_request(format!(
            "The item doesn't have a {} {noun}.",
            clip(id)
        )))
    };
    if rest.len() == 1 {
        return match (op.op, position, op.value.clone()) {
            (Op::Remove, Some(i), _) => {
                list.remove(i);
                Ok(())
            }
            (Op::Add | Op::Replace, Some(i), Some(Value::Object(mut obj))) => {
                obj.insert("id".to_owned(), Value::String(id.clone()));
                list[i] = Value::Object(obj);
                Ok(())
            }
            (Op::Add, None, Some(Value::Object(mut obj))) if id != "-" => {
                obj.insert("id".to_owned(), Value::String(id.clone()));
                list.push(Value::Object(obj));
                Ok(())
            }
            (Op::Add, None, Some(Value::Object(obj))) => {
                list.push(Value::Object(obj));
                Ok(())
            }
            (_, None, _) => Err(missing()),
            (_, Some(_), _) => Err(Some(ApiError::bad_request(format!(
                "Invalid JSON Patch value for {}: expected a {noun} object",
                clip(&op.raw_path)
            )))),
        };
    }
    let Some(i) = position else {
        return Err(missing());
    };
    let Value::Object(element) = &mut list[i] else {
        return Err(None);
    };
    if rest[1] == "id" {
        return Err(Some(ApiError::bad_request(format!(
            "Invalid JSON Patch path \"{}\": a {noun}'s id cannot be changed",
            clip(&op.raw_path)
        ))));
    }
    apply_pointer(element, shape, &rest[1..], op.op, op.value.clone()).map_err(|why| {
        Some(ApiError::bad_request(format!(
            "Invalid JSON Patch path \"{}\": {why}",
            clip(&op.raw_path)
        )))
    })
}

/// Plain RFC 6901 navigation below `target` (an object of `shape`), then the operation on the
/// last segment.
fn apply_pointer(
    target: &mut Map<String, Value>,
    shape: Shape,
    path: &[String],
    op: Op,
    value: Option<Value>,
) -> Result<(), &'static str> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty path");
    };
    let mut current: &mut Value = match parents.first() {
        None => return set_member(target, shape, last, op, value),
        Some(first) => target.get_mut(first.as_str()).ok_or("does not exist")?,
    };
    let shape = parents.iter().fold(shape, |s, segment| s.child(segment));
    for segment in parents.iter().skip(1) {
        current = match current {
            Value::Object(map) => map.get_mut(segment.as_str()).ok_or("does not exist")?,
            Value::Array(list) => {
                let i = index(segment, list.len(), false)?;
                &mut list[i]
            }
            _ => return Err("does not exist"),
        };
    }
    match current {
        Value::Object(map) => set_member(map, shape, last, op, value),
        Value::Array(list) => match op {
            Op::Add => {
                let i = index(last, list.len(), true)?;
                list.insert(i, value.ok_or("needs a value")?);
                Ok(())
            }
            Op::Replace => {
                let i = index(last, list.len(), false)?;
                list[i] = value.ok_or("needs a value")?;
                Ok(())
            }
            Op::Remove => {
                let i = index(last, list.len(), false)?;
                list.remove(i);
                Ok(())
            }
        },
        _ => Err("does not exist"),
    }
}

/// `add` sets the member; `replace` only one that exists (or an unset attribute of `shape`);
/// `remove` only one that exists.
fn set_member(
    map: &mut Map<String, Value>,
    shape: Shape,
    key: &str,
    op: Op,
    value: Option<Value>,
) -> Result<(), &'static str> {
    match op {
        Op::Add => {
            map.insert(key.to_owned(), value.ok_or("needs a value")?);
        }
        Op::Replace => {
            if !map.contains_key(key) && !shape.optional().contains(&key) {
                return Err("does not exist (replace needs an existing target; use add)");
            }
            map.insert(key.to_owned(), value.ok_or("needs a value")?);
        }
        Op::Remove => {
            if map.remove(key).is_none() {
                return Err("does not exist");
            }
        }
    }
    Ok(())
}

/// An array index; `-` (and `len` itself) means the end when `for_insert`.
fn index(segment: &str, len: usize, for_insert: bool) -> Result<usize, &'static str> {
    if for_insert && segment == "-" {
        return Ok(len);
    }
    let valid = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    let i: usize = if valid {
        segment.parse().map_err(|_| "array index out of range")?
    } else {
        return Err("not a valid array index");
    };
    if i < len || (for_insert && i == len) {
        Ok(i)
    } else {
        Err("array index out of range")
    }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests;
