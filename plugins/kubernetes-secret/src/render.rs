//! What a Secret holds for an item: the `data` of each type (Opaque, dockerconfigjson, tls),
//! checked against the API server's rules for keys and size, and the shape of its fingerprint.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use opsync_destination_kit::{PluginError, canonical, misconfigured, permanent};
use serde_json::{Map, Value, json};

use crate::names::{SECRET_KEY_RULE, is_secret_key};

pub const OPAQUE: &str = "Opaque";
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
pub const TLS: &str = "kubernetes.io/tls";
/// The `type`s this plugin writes; the first is the default.
pub const TYPES: &[&str] = &[OPAQUE, DOCKER_CONFIG_JSON, TLS];

/// The key of a dockerconfigjson Secret.
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";

/// The API server's limit on a Secret's data: the sum of its values' sizes, in bytes.
pub const MAX_DATA_BYTES: usize = 1 << 20;

/// A Secret's values before encoding: key to value (item field values are text).
pub type Values = BTreeMap<String, String>;

/// The `fields` of an Opaque Secret: field ids or labels, each with the key it is written under
/// (`FIELD=KEY`), or none for the field's label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMap {
    pub fields: Vec<String>,
    pub keys: Vec<Option<String>>,
}

/// Parses the `fields` entries: `FIELD` or `FIELD=KEY` (split at the last `=`: keys cannot hold
/// one). A mapped key must be a valid Secret key, and no two entries may map to the same key.
pub fn parse_fields(entries: &[String]) -> Result<FieldMap, PluginError> {
    let mut map = FieldMap::default();
    for entry in entries {
        let (field, key) = match entry.rsplit_once('=') {
            Some((field, key)) => (field.trim(), Some(key.trim())),
            None => (entry.trim(), None),
        };
        if field.is_empty() {
            return Err(misconfigured(format!(
                "`fields` entry `{entry}`: the field is empty (write FIELD or FIELD=KEY)"
            )));
        }
        if let Some(key) = key {
            if !is_secret_key(key) {
                return Err(misconfigured(format!(
                    "`fields` entry `{entry}`: `{key}` is not a Secret key ({SECRET_KEY_RULE})"
                )));
            }
            if map.keys.iter().flatten().any(|k| k == key) {
                return Err(misconfigured(format!(
                    "`fields` maps two fields to the key `{key}`"
                )));
            }
        }
        map.fields.push(field.to_string());
        map.keys.push(key.map(String::from));
    }
    Ok(map)
}

/// One field selected for an Opaque Secret: its label, the key `fields` maps it to, its value.
pub struct Selected {
    pub label: String,
    pub key: Option<String>,
    pub value: String,
}

/// The values of an Opaque Secret, and the keys that more than one field gave (the first field
/// wins, as in the other destinations' JSON). `item` names the item in messages.
pub fn opaque(item: &str, selected: Vec<Selected>) -> Result<(Values, Vec<String>), PluginError> {
    let mut values = Values::new();
    let mut repeated = Vec::new();
    for s in selected {
        let key = s.key.unwrap_or_else(|| key_of_label(&s.label));
        if !is_secret_key(&key) {
            return Err(permanent(format!(
                "{item}: the field `{}` cannot be a Secret key as `{key}` ({SECRET_KEY_RULE}); \
                 map it to a key with `fields` (`{}=KEY`)",
                s.label, s.label
            )));
        }
        if values.contains_key(&key) {
            if !repeated.contains(&key) {
                repeated.push(key);
            }
            continue;
        }
        values.insert(key, s.value);
    }
    Ok((values, repeated))
}

/// The key an unmapped field is written under: its label, with each run of characters a key
/// cannot hold (spaces, `/`, `:`...) as one `_` (`one-time password` is `one-time_password`),
/// so that labels as people write them work, and as `envFrom` variables too.
pub fn key_of_label(label: &str) -> String {
    let mut key = String::with_capacity(label.len());
    for c in label.trim().chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
            key.push(c);
        } else if !key.ends_with('_') {
            key.push('_');
        }
    }
    key
}

/// The `.dockerconfigjson` of one registry login, as `kubectl create secret docker-registry`
/// writes it: `{"auths": {REGISTRY: {"username", "password", "auth": base64("U:P")}}}`, in
/// canonical JSON (keys sorted) so that the same login always gives the same bytes.
pub fn docker_config_json(registry: &str, username: &str, password: &str) -> String {
    let auth = STANDARD.encode(format!("{username}:{password}"));
    let doc = json!({
        "auths": {
            registry: { "username": username, "password": password, "auth": auth },
        },
    });
    String::from_utf8_lossy(&canonical::json(&doc)).into_owned()
}

/// The values of a dockerconfigjson Secret.
pub fn docker_values(registry: &str, username: &str, password: &str) -> Values {
    Values::from([(
        DOCKER_CONFIG_KEY.to_string(),
        docker_config_json(registry, username, password),
    )])
}

/// Refuses values above the API server's 1 MiB limit (the sum of the values' sizes), before
/// anything is sent.
pub fn check_size(item: &str, values: &Values) -> Result<(), PluginError> {
    let total: usize = values.values().map(String::len).sum();
    if total > MAX_DATA_BYTES {
        return Err(permanent(format!(
            "{item}: the Secret's data is {total} bytes, above Kubernetes' limit of \
             {MAX_DATA_BYTES} bytes (1 MiB)"
        )));
    }
    Ok(())
}

/// A Secret's `data`: each value in standard base64, as the API stores and returns it.
pub fn encode(values: &Values) -> Map<String, Value> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(STANDARD.encode(v))))
        .collect()
}

/// What the fingerprint is taken over: the canonical JSON of `{"type", "data"}`, data as base64
/// (what is sent on a write, what the API answers on a read).
pub fn fingerprint_input(secret_type: &str, data: &Map<String, Value>) -> Vec<u8> {
    canonical::json(&json!({ "type": secret_type, "data": data }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEM: &str = "item `DB` (itm1)";

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn selected(label: &str, key: Option<&str>, value: &str) -> Selected {
        Selected {
            label: label.into(),
            key: key.map(String::from),
            value: value.into(),
        }
    }

    #[test]
    fn fields_name_or_map_their_keys() {
        let map = parse_fields(&entries(&["username", " api key = API_KEY", "a=b=c"])).expect("ok");
        assert_eq!(map.fields, vec!["username", "api key", "a=b"]);
        assert_eq!(
            map.keys,
            vec![None, Some("API_KEY".to_string()), Some("c".to_string())]
        );
        for bad in [
            &["x=api key"][..],
            &["x=.."],
            &["=k"],
            &["x="],
            &["a=k", "b=k"],
        ] {
            assert!(
                matches!(
                    parse_fields(&entries(bad)),
                    Err(PluginError::Misconfigured(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unmapped_labels_become_valid_keys() {
        assert_eq!(key_of_label("one-time password"), "one-time_password");
        assert_eq!(key_of_label(" requests / second "), "requests_second");
        assert_eq!(key_of_label("API_KEY"), "API_KEY");
        assert!(is_secret_key(&key_of_label("replica host")));
    }

    #[test]
    fn opaque_keys_are_labels_or_mapped_names_and_must_be_valid() {
        let (values, repeated) = opaque(
            ITEM,
            vec![
                selected("username", None, "admin"),
                selected("api key", Some("API_KEY"), "k"),
                selected("username", None, "second"),
            ],
        )
        .expect("valid");
        assert_eq!(
            values,
            Values::from([
                ("API_KEY".to_string(), "k".to_string()),
                ("username".to_string(), "admin".to_string()),
            ])
        );
        assert_eq!(repeated, vec!["username"]);
        let err =
            opaque(ITEM, vec![selected("api key", Some("a b"), "s3cret")]).expect_err("bad key");
        let PluginError::Permanent(msg) = err else {
            panic!("not permanent: {err:?}")
        };
        assert!(msg.contains(ITEM) && msg.contains("`api key`") && msg.contains("`fields`"));
        assert!(!msg.contains("s3cret"));
        assert!(opaque(ITEM, vec![selected("..", None, "x")]).is_err());
        let (values, _) =
            opaque(ITEM, vec![selected("api key", None, "k")]).expect("a label is made a key");
        assert_eq!(
            values,
            Values::from([("api_key".to_string(), "k".to_string())])
        );
    }

    #[test]
    fn dockerconfigjson_is_what_kubectl_writes() {
        let text = docker_config_json("ghcr.io", "bot", "pa:ss");
        assert_eq!(
            text,
            r#"{"auths":{"ghcr.io":{"auth":"Ym90OnBhOnNz","password":"pa:ss","username":"bot"}}}"#
        );
        let values = docker_values("https://index.docker.io/v1/", "u", "p\"q");
        let parsed: Value = serde_json::from_str(&values[DOCKER_CONFIG_KEY]).expect("json");
        let login = &parsed["auths"]["https://index.docker.io/v1/"];
        assert_eq!(login["password"], "p\"q");
        assert_eq!(
            STANDARD
                .decode(login["auth"].as_str().expect("auth"))
                .expect("b64"),
            b"u:p\"q"
        );
        assert_eq!(values.len(), 1);
    }

    #[test]
    fn the_size_limit_is_on_the_decoded_values() {
        let at_limit = Values::from([
            ("a".to_string(), "x".repeat(MAX_DATA_BYTES - 10)),
            ("b".to_string(), "y".repeat(10)),
        ]);
        assert!(check_size(ITEM, &at_limit).is_ok());
        let over = Values::from([
            ("a".to_string(), "x".repeat(MAX_DATA_BYTES)),
            ("b".to_string(), "y".to_string()),
        ]);
        let err = check_size(ITEM, &over).expect_err("too big");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains(ITEM) && m.contains("1048577 bytes"))
        );
    }

    #[test]
    fn data_is_base64_and_the_fingerprint_shape_is_canonical() {
        let data = encode(&Values::from([
            ("password".to_string(), "hunter2".to_string()),
            ("user".to_string(), "".to_string()),
        ]));
        assert_eq!(data["password"], "aHVudGVyMg==");
        assert_eq!(data["user"], "");
        assert_eq!(
            String::from_utf8(fingerprint_input(OPAQUE, &data)).expect("utf-8"),
            r#"{"data":{"password":"aHVudGVyMg==","user":""},"type":"Opaque"}"#
        );
        // The API's answer, keys in another order, gives the same bytes.
        let answered: Value =
            serde_json::from_str(r#"{"user": "", "password": "aHVudGVyMg=="}"#).expect("json");
        assert_eq!(
            fingerprint_input(OPAQUE, answered.as_object().expect("object")),
            fingerprint_input(OPAQUE, &data)
        );
        assert_ne!(
            fingerprint_input(TLS, &data),
            fingerprint_input(OPAQUE, &data)
        );
    }
}
