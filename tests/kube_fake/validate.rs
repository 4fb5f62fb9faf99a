//! Secret validation as the API server does it: name, labels, annotations, data, size, type.

use super::secret::Secret;
use super::status::Cause;

/// The most data (decoded bytes of all values) a Secret may hold.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;
/// The most bytes (keys and values) of all annotations of an object.
const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;

const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const QUALIFIED_NAME: &str = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// What is wrong with `new` (replacing `old`, if any); empty when it may be stored.
pub fn secret(old: Option<&Secret>, new: &Secret) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(old) = old {
        if old.type_ != new.type_ {
            causes.push(Cause::invalid("type", &new.type_, "field is immutable"));
        }
        if old.immutable == Some(true) {
            if new.immutable != Some(true) {
                causes.push(Cause::forbidden("immutable", IMMUTABLE_SET));
            }
            if old.data != new.data {
                causes.push(Cause::forbidden("data", IMMUTABLE_SET));
            }
        }
    }
    for why in dns1123_subdomain(&new.name) {
        causes.push(Cause::invalid("metadata.name", &new.name, &why));
    }
    metadata_maps(new, &mut causes);
    data(new, &mut causes);
    type_specific(new, &mut causes);
    causes
}

/// Every object's name: at most 253 characters of `[a-z0-9.-]`, each dot-separated part starting
/// and ending with an alphanumeric.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push("must be no more than 253 characters".into());
    }
    let part_ok = |part: &str| {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        part.starts_with(alnum)
            && part.ends_with(alnum)
            && part.chars().all(|c| alnum(c) || c == '-')
    };
    if !value.split('.').all(part_ok) {
        errors.push(DNS1123_SUBDOMAIN.into());
    }
    errors
}

fn metadata_maps(new: &Secret, causes: &mut Vec<Cause>) {
    for (key, value) in &new.labels {
        for why in qualified_name(key) {
            causes.push(Cause::invalid("metadata.labels", key, &why));
        }
        for why in label_value(value) {
            causes.push(Cause::invalid("metadata.labels", value, &why));
        }
    }
    let mut size = 0;
    for (key, value) in &new.annotations {
        for why in qualified_name(&key.to_lowercase()) {
            causes.push(Cause::invalid("metadata.annotations", key, &why));
        }
        size += key.len() + value.len();
    }
    if size > MAX_ANNOTATIONS_SIZE {
        causes.push(Cause::too_long(
            "metadata.annotations",
            MAX_ANNOTATIONS_SIZE,
        ));
    }
}

fn data(new: &Secret, causes: &mut Vec<Cause>) {
    let mut size = 0;
    for (key, value) in &new.data {
        for why in config_key(key) {
            causes.push(Cause::invalid(format!("data[{key}]"), key, &why));
        }
        size += value.len();
    }
    if size > MAX_SECRET_SIZE {
        causes.push(Cause::too_long("data", MAX_SECRET_SIZE));
    }
}

/// The keys each built-in type requires (and the docker ones' JSON).
fn type_specific(new: &Secret, causes: &mut Vec<Cause>) {
    let required = |keys: &[&str]| -> Vec<Cause> {
        keys.iter()
            .filter(|key| !new.data.contains_key(**key))
            .map(|key| Cause::required(format!("data[{key}]"), ""))
            .collect()
    };
    match new.type_.as_str() {
        "kubernetes.io/tls" => causes.extend(required(&["tls.crt", "tls.key"])),
        "kubernetes.io/ssh-auth" => causes.extend(required(&["ssh-privatekey"])),
        "kubernetes.io/dockerconfigjson" => docker_json(new, ".dockerconfigjson", causes),
        "kubernetes.io/dockercfg" => docker_json(new, ".dockercfg", causes),
        "kubernetes.io/basic-auth"
            if !new.data.contains_key("username") && !new.data.contains_key("password") =>
        {
            causes.extend(required(&["username", "password"]));
        }
        "kubernetes.io/service-account-token"
            if !new
                .annotations
                .contains_key("kubernetes.io/service-account.name") =>
        {
            causes.push(Cause::required(
                "metadata.annotations[kubernetes.io/service-account.name]",
                "",
            ));
        }
        _ => {}
    }
}

/// A docker config Secret needs its key, holding JSON.
fn docker_json(new: &Secret, key: &str, causes: &mut Vec<Cause>) {
    match new.data.get(key) {
        None => causes.push(Cause::required(format!("data[{key}]"), "")),
        Some(content) => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(content) {
                let field = format!("data[{key}]");
                causes.push(Cause::invalid(
                    field,
                    "<secret contents redacted>",
                    &e.to_string(),
                ));
            }
        }
    }
}

/// A Secret or ConfigMap data key.
fn config_key(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if key.len() > 253 {
        errors.push("must be no more than 253 characters".into());
    }
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        errors.push(CONFIG_KEY.into());
    }
    if key == "." {
        errors.push("must not be '.'".into());
    } else if key == ".." {
        errors.push("must not be '..'".into());
    } else if key.starts_with("..") {
        errors.push("must not start with '..'".into());
    }
    errors
}

/// `[prefix/]name`: label and annotation keys.
fn qualified_name(key: &str) -> Vec<String> {
    let (prefix, name) = match key.split('/').collect::<Vec<_>>().as_slice() {
        [name] => (None, *name),
        [prefix, name] => (Some(*prefix), *name),
        _ => return vec![QUALIFIED_NAME.into()],
    };
    let mut errors = Vec::new();
    match prefix {
        Some("") => errors.push("prefix part must be non-empty".into()),
        Some(prefix) => errors.extend(
            dns1123_subdomain(prefix)
                .into_iter()
                .map(|e| format!("prefix part {e}")),
        ),
        None => {}
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".into());
    }
    if !name.is_empty() && !label_chars(name) {
        errors.push(NAME_PART.into());
    }
    errors
}

fn label_value(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".into());
    }
    if !value.is_empty() && !label_chars(value) {
        errors.push(LABEL_VALUE.into());
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn label_chars(value: &str) -> bool {
    value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}
