//! A CI/CD variable as GitLab keeps it, and the shape of its fingerprint.
//!
//! Read from the API's JSON, sent as JSON, and compared with what opsync would write.

use opsync_destination_kit::canonical;
use serde_json::{Map, Value, json};

use crate::settings::Attributes;

/// One variable. It holds a value: it has no `Debug`, so it never lands in a log or a message.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    pub(crate) key: String,
    /// None when GitLab does not say (a hidden variable).
    pub(crate) value: Option<String>,
    pub(crate) variable_type: String,
    pub(crate) masked: bool,
    pub(crate) protected: bool,
    pub(crate) raw: bool,
    pub(crate) environment_scope: String,
    pub(crate) description: Option<String>,
}

impl Variable {
    /// What opsync writes: `value` under `key`, with the configured attributes and `description`.
    pub(crate) fn wanted(
        key: String,
        value: String,
        attributes: &Attributes,
        description: String,
    ) -> Self {
        Self {
            key,
            value: Some(value),
            variable_type: attributes.variable_type.to_string(),
            masked: attributes.masked,
            protected: attributes.protected,
            raw: attributes.raw,
            environment_scope: attributes.environment_scope.clone(),
            description: Some(description),
        }
    }

    /// A variable from the API's JSON, with GitLab's defaults for what it leaves out; none when
    /// the JSON is not a variable (no `key`).
    pub(crate) fn from_json(json: &Value) -> Option<Self> {
        let flag = |name: &str| json[name].as_bool().unwrap_or(false);
        let text = |name: &str| json[name].as_str().map(String::from);
        Some(Self {
            key: text("key")?,
            value: text("value"),
            variable_type: text("variable_type").unwrap_or_else(|| "env_var".into()),
            masked: flag("masked"),
            protected: flag("protected"),
            raw: flag("raw"),
            environment_scope: text("environment_scope").unwrap_or_else(|| "*".into()),
            description: text("description"),
        })
    }

    /// The body of a create or an update: every attribute opsync manages.
    pub(crate) fn body(&self) -> Value {
        json!({
            "key": self.key,
            "value": self.value,
            "variable_type": self.variable_type,
            "masked": self.masked,
            "protected": self.protected,
            "raw": self.raw,
            "environment_scope": self.environment_scope,
            "description": self.description,
        })
    }

    /// What the fingerprint covers of one variable: its value and attributes (not its
    /// description, which says whose it is, not what a job gets).
    fn state(&self) -> Value {
        json!({
            "value": self.value,
            "variable_type": self.variable_type,
            "masked": self.masked,
            "protected": self.protected,
            "raw": self.raw,
            "environment_scope": self.environment_scope,
        })
    }
}

/// What an item's fingerprint is taken over: the canonical JSON of
/// `{KEY: {value, variable_type, masked, protected, raw, environment_scope}}` for each of its
/// variables, the same from what was written and from what a read answers.
pub(crate) fn fingerprint_input(variables: &[Variable]) -> Vec<u8> {
    let map: Map<String, Value> = variables
        .iter()
        .map(|v| (v.key.clone(), v.state()))
        .collect();
    canonical::json(&Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{attributes, variable};

    #[test]
    fn a_variable_is_read_with_gitlabs_defaults() {
        let full: Value = serde_json::from_str(
            r#"{"variable_type":"file","key":"DB_PASSWORD","value":"hunter22","protected":true,
                "masked":true,"hidden":false,"raw":true,"environment_scope":"production",
                "description":"managed by opsync: item itm1"}"#,
        )
        .expect("json");
        let v = Variable::from_json(&full).expect("a variable");
        assert_eq!(v.key, "DB_PASSWORD");
        assert_eq!(v.value.as_deref(), Some("hunter22"));
        assert_eq!(v.variable_type, "file");
        assert!(v.masked && v.protected && v.raw);
        assert_eq!(v.environment_scope, "production");
        assert_eq!(
            v.description.as_deref(),
            Some("managed by opsync: item itm1")
        );
        let bare = Variable::from_json(&json!({"key": "K", "value": null, "description": null}))
            .expect("a variable");
        assert_eq!(bare.value, None);
        assert_eq!(bare.variable_type, "env_var");
        assert_eq!(bare.environment_scope, "*");
        assert!(!bare.masked && !bare.protected && !bare.raw);
        assert_eq!(bare.description, None);
        assert!(Variable::from_json(&json!({"message": "404 Variable Not Found"})).is_none());
    }

    #[test]
    fn the_body_round_trips_and_equality_covers_everything() {
        let wanted = Variable::wanted(
            "DB_PASSWORD".into(),
            "hunter22".into(),
            &attributes(),
            "managed by opsync: item itm1".into(),
        );
        let body = wanted.body();
        assert_eq!(
            body,
            json!({
                "key": "DB_PASSWORD", "value": "hunter22", "variable_type": "env_var",
                "masked": false, "protected": false, "raw": true, "environment_scope": "*",
                "description": "managed by opsync: item itm1",
            })
        );
        // GitLab's answer to the write, with a field opsync does not manage.
        let mut answer = body.clone();
        answer["hidden"] = json!(false);
        assert!(Variable::from_json(&answer).expect("variable") == wanted);
        let changed = |f: fn(&mut Variable)| {
            let mut v = wanted.clone();
            f(&mut v);
            v != wanted
        };
        assert!(changed(|v| v.value = Some("other".into())));
        assert!(changed(|v| v.value = None));
        assert!(changed(|v| v.variable_type = "file".into()));
        assert!(changed(|v| v.masked = true));
        assert!(changed(|v| v.protected = true));
        assert!(changed(|v| v.raw = false));
        assert!(changed(|v| v.environment_scope = "production".into()));
        assert!(changed(|v| v.description = None));
    }

    #[test]
    fn the_fingerprint_shape_is_per_key_value_and_attributes() {
        let a = variable("DB_USER", "orders");
        let b = variable("DB_PASSWORD", "hunter22");
        let input = String::from_utf8(fingerprint_input(&[a.clone(), b.clone()])).expect("utf-8");
        assert_eq!(
            input,
            r#"{"DB_PASSWORD":{"environment_scope":"*","masked":false,"protected":false,"raw":true,"value":"hunter22","variable_type":"env_var"},"DB_USER":{"environment_scope":"*","masked":false,"protected":false,"raw":true,"value":"orders","variable_type":"env_var"}}"#
        );
        // Order does not matter; the description does not count; the value and attributes do.
        assert_eq!(
            fingerprint_input(&[b.clone(), a.clone()]),
            fingerprint_input(&[a.clone(), b.clone()])
        );
        let mut described = b.clone();
        described.description = Some("someone else".into());
        assert_eq!(
            fingerprint_input(&[described]),
            fingerprint_input(std::slice::from_ref(&b))
        );
        let mut masked = b.clone();
        masked.masked = true;
        assert_ne!(
            fingerprint_input(&[masked]),
            fingerprint_input(std::slice::from_ref(&b))
        );
        let mut edited = b.clone();
        edited.value = Some("hunter23".into());
        assert_ne!(fingerprint_input(&[edited]), fingerprint_input(&[b]));
    }
}
