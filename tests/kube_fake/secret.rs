//! The Secret object: request bodies decoded, responses encoded, its fields as apply sees them.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::ssa::{Field, Flat, Managed};

/// A stored Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Secret {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub resource_version: u64,
    pub creation_timestamp: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub type_: String,
    pub immutable: Option<bool>,
    pub data: BTreeMap<String, Vec<u8>>,
    pub managed: Vec<Managed>,
}

impl Secret {
    /// An empty Secret with a fresh identity (no resourceVersion yet).
    pub fn blank(namespace: &str, name: &str, uid: String, now: &str) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            uid,
            resource_version: 0,
            creation_timestamp: now.to_owned(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            type_: String::new(),
            immutable: None,
            data: BTreeMap::new(),
            managed: Vec::new(),
        }
    }

    /// Takes everything a full object (POST, PUT, patched object) states; `type` defaults.
    pub fn replace_content(&mut self, body: Body) {
        self.labels = body.labels.unwrap_or_default();
        self.annotations = body.annotations.unwrap_or_default();
        self.type_ = body.type_.unwrap_or_default();
        self.immutable = body.immutable;
        self.data = body.data.unwrap_or_default();
        self.default_type();
    }

    /// An empty type is `Opaque`, as the API server defaults it.
    pub fn default_type(&mut self) {
        if self.type_.is_empty() {
            self.type_ = "Opaque".into();
        }
    }

    /// The object as GET returns it.
    pub fn to_json(&self) -> Value {
        let mut body = self.to_item();
        let item = body.as_object_mut().expect("an object");
        let mut full = Map::new();
        full.insert("kind".into(), json!("Secret"));
        full.insert("apiVersion".into(), json!("v1"));
        full.append(item);
        Value::Object(full)
    }

    /// The object as a list's `items` hold it (without kind and apiVersion).
    pub fn to_item(&self) -> Value {
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(self.name));
        metadata.insert("namespace".into(), json!(self.namespace));
        metadata.insert("uid".into(), json!(self.uid));
        if self.resource_version > 0 {
            metadata.insert(
                "resourceVersion".into(),
                json!(self.resource_version.to_string()),
            );
        }
        metadata.insert("creationTimestamp".into(), json!(self.creation_timestamp));
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), json!(self.labels));
        }
        if !self.annotations.is_empty() {
            metadata.insert("annotations".into(), json!(self.annotations));
        }
        if !self.managed.is_empty() {
            let managed: Vec<Value> = self.managed.iter().map(Managed::to_json).collect();
            metadata.insert("managedFields".into(), Value::Array(managed));
        }
        let mut item = Map::new();
        item.insert("metadata".into(), Value::Object(metadata));
        if let Some(immutable) = self.immutable {
            item.insert("immutable".into(), json!(immutable));
        }
        if !self.data.is_empty() {
            let data: Map<String, Value> = self
                .data
                .iter()
                .map(|(k, v)| (k.clone(), json!(STANDARD.encode(v))))
                .collect();
            item.insert("data".into(), Value::Object(data));
        }
        item.insert("type".into(), json!(self.type_));
        Value::Object(item)
    }

    /// Its fields with their values, map fields included.
    pub fn flat(&self) -> Flat {
        let mut flat = Flat::new();
        flat.insert(Field::Type, self.type_.clone());
        if let Some(immutable) = self.immutable {
            flat.insert(Field::Immutable, immutable.to_string());
        }
        flatten_maps(
            &mut flat,
            Some(&self.labels),
            Some(&self.annotations),
            Some(&self.data),
        );
        for (present, field) in [
            (!self.labels.is_empty(), Field::LabelsMap),
            (!self.annotations.is_empty(), Field::AnnotationsMap),
            (!self.data.is_empty(), Field::DataMap),
        ] {
            if present {
                flat.insert(field, String::new());
            }
        }
        flat
    }

    /// Sets one field to a value from a [`Flat`].
    pub fn set(&mut self, field: &Field, value: &str) {
        match field {
            Field::Type => self.type_ = value.to_owned(),
            Field::Immutable => self.immutable = Some(value == "true"),
            Field::Data(key) => {
                let bytes = STANDARD.decode(value).expect("flattened data is base64");
                self.data.insert(key.clone(), bytes);
            }
            Field::Label(key) => {
                self.labels.insert(key.clone(), value.to_owned());
            }
            Field::Annotation(key) => {
                self.annotations.insert(key.clone(), value.to_owned());
            }
            Field::DataMap | Field::LabelsMap | Field::AnnotationsMap => {}
        }
    }

    /// Removes one field (a removed `type` falls back to the default).
    pub fn unset(&mut self, field: &Field) {
        match field {
            Field::Type => self.type_.clear(),
            Field::Immutable => self.immutable = None,
            Field::Data(key) => {
                self.data.remove(key);
            }
            Field::Label(key) => {
                self.labels.remove(key);
            }
            Field::Annotation(key) => {
                self.annotations.remove(key);
            }
            Field::DataMap | Field::LabelsMap | Field::AnnotationsMap => {}
        }
        self.default_type();
    }

    /// Same content and ownership: writing `other` over `self` would change nothing.
    pub fn same_as(&self, other: &Secret) -> bool {
        self.flat() == other.flat() && super::ssa::same_ownership(&self.managed, &other.managed)
    }
}

fn flatten_maps(
    flat: &mut Flat,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
    data: Option<&BTreeMap<String, Vec<u8>>>,
) {
    for (key, value) in labels.into_iter().flatten() {
        flat.insert(Field::Label(key.clone()), value.clone());
    }
    for (key, value) in annotations.into_iter().flatten() {
        flat.insert(Field::Annotation(key.clone()), value.clone());
    }
    for (key, value) in data.into_iter().flatten() {
        flat.insert(Field::Data(key.clone()), STANDARD.encode(value));
    }
}

/// A Secret as a request body states it. What is absent stays `None`: an apply owns only what
/// it sends.
#[derive(Debug, Default)]
pub struct Body {
    pub name: String,
    pub generate_name: String,
    pub namespace: Option<String>,
    pub resource_version: Option<String>,
    pub uid: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub type_: Option<String>,
    pub immutable: Option<bool>,
    /// `data` with `stringData` merged in (stringData wins), as the API server stores it.
    pub data: Option<BTreeMap<String, Vec<u8>>>,
}

impl Body {
    /// Reads a request body; the error is the whole 400 message.
    pub fn decode(value: &Value) -> Result<Self, String> {
        decode(value)
            .map_err(|why| format!("Secret in version \"v1\" cannot be handled as a Secret: {why}"))
    }

    /// The fields it sets, as an applied configuration (leaves only).
    pub fn flat(&self) -> Flat {
        let mut flat = Flat::new();
        if let Some(type_) = &self.type_ {
            flat.insert(Field::Type, type_.clone());
        }
        if let Some(immutable) = self.immutable {
            flat.insert(Field::Immutable, immutable.to_string());
        }
        flatten_maps(
            &mut flat,
            self.labels.as_ref(),
            self.annotations.as_ref(),
            self.data.as_ref(),
        );
        flat
    }
}

fn decode(value: &Value) -> Result<Body, String> {
    let object = value
        .as_object()
        .ok_or("json: cannot unmarshal a non-object into Go value of type v1.Secret")?;
    expect_string(object, "kind", "Secret")?;
    expect_string(object, "apiVersion", "v1")?;
    let empty = Map::new();
    let metadata = match object.get("metadata") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(
                "json: cannot unmarshal into Go struct field Secret.metadata of type v1.ObjectMeta"
                    .into(),
            );
        }
    };
    let mut data = match object.get("data") {
        None | Some(Value::Null) => None,
        Some(value) => Some(decode_data(value)?),
    };
    if let Some(strings) = string_map(object.get("stringData"), "stringData")? {
        let data = data.get_or_insert_with(BTreeMap::new);
        for (key, value) in strings {
            data.insert(key, value.into_bytes());
        }
    }
    Ok(Body {
        name: string(metadata, "name")?.unwrap_or_default(),
        generate_name: string(metadata, "generateName")?.unwrap_or_default(),
        namespace: string(metadata, "namespace")?,
        resource_version: string(metadata, "resourceVersion")?.filter(|rv| !rv.is_empty()),
        uid: string(metadata, "uid")?.filter(|uid| !uid.is_empty()),
        labels: string_map(metadata.get("labels"), "metadata.labels")?,
        annotations: string_map(metadata.get("annotations"), "metadata.annotations")?,
        type_: string(object, "type")?.filter(|t| !t.is_empty()),
        immutable: match object.get("immutable") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(
                    "json: cannot unmarshal into Go struct field Secret.immutable of type bool"
                        .into(),
                );
            }
        },
        data,
    })
}

/// `kind`/`apiVersion` may be left out, but not name something else.
fn expect_string(object: &Map<String, Value>, key: &str, expected: &str) -> Result<(), String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.is_empty() || s == expected => Ok(()),
        Some(other) => Err(format!("{key} is {other}, the request is for {expected:?}")),
    }
}

fn string(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!(
            "json: cannot unmarshal into Go struct field {key} of type string"
        )),
    }
}

fn string_map(
    value: Option<&Value>,
    what: &str,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(format!(
                "json: cannot unmarshal into Go struct field {what} of type map[string]string"
            ));
        }
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(format!(
                "json: cannot unmarshal into Go struct field {what} of type string"
            )),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

fn decode_data(value: &Value) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let map = value.as_object().ok_or(
        "json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8",
    )?;
    map.iter()
        .map(|(key, value)| {
            let bytes =
                match value {
                    Value::Null => Vec::new(),
                    Value::String(s) => STANDARD.decode(s).map_err(base64_error)?,
                    _ => return Err(
                        "json: cannot unmarshal into Go struct field Secret.data of type []uint8"
                            .into(),
                    ),
                };
            Ok((key.clone(), bytes))
        })
        .collect()
}

/// Go's wording for bad base64 in a `[]byte` field.
fn base64_error(error: base64::DecodeError) -> String {
    let at = match error {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            at
        }
        base64::DecodeError::InvalidLength(len) => len,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}
