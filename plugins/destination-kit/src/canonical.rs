//! A canonical serialization of JSON, for fingerprints of JSON a destination stores: the same
//! document gives the same bytes whatever the order of its object keys, before and after a round
//! trip through the destination.

use serde_json::Value;

/// `value` as compact JSON with every object's keys sorted (by their UTF-8 bytes).
pub fn json(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write(value, &mut out);
    out.into_bytes()
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_and_nothing_else_is_lost() {
        let a: Value = serde_json::from_str(
            r#"{"b": "2", "a": {"y": [1, {"d": null, "c": true}], "x": "q\"\n"}}"#,
        )
        .expect("json");
        let b = json!({"a": {"x": "q\"\n", "y": [1, {"c": true, "d": null}]}, "b": "2"});
        assert_eq!(json(&a), json(&b));
        assert_eq!(
            String::from_utf8(json(&a)).expect("utf-8"),
            r#"{"a":{"x":"q\"\n","y":[1,{"c":true,"d":null}]},"b":"2"}"#
        );
        assert_ne!(json(&json!({"a": "1"})), json(&json!({"a": 1})));
    }
}
