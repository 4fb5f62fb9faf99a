//! JSON merge patch (RFC 7386), which the fake also applies for strategic merge patches.

use serde_json::{Map, Value};

/// Merges `patch` into `target`: objects recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// A strategic merge patch's directive (`$patch`, `$retainKeys`, `$setElementOrder/...`), which
/// this fake does not implement: the first one found, to refuse the patch clearly.
pub fn strategic_directive(patch: &Value) -> Option<String> {
    match patch {
        Value::Object(map) => map.iter().find_map(|(key, value)| {
            if key.starts_with('$') {
                Some(key.clone())
            } else {
                strategic_directive(value)
            }
        }),
        Value::Array(items) => items.iter().find_map(strategic_directive),
        _ => None,
    }
}
