//! What a request says: its path segments, credentials, and parameters merged as Grape merges them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::reply::{self, Reply};

/// One HTTP request as the handlers see it.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// As sent, percent-encoded (`/api/v4/projects/team%2Fapp`).
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// `127.0.0.1:PORT`, for the `Link` header's URLs.
    pub host: String,
    pub private_token: Option<String>,
    pub authorization: Option<String>,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The path's segments, percent-decoded one by one (`team%2Fapp` is one segment).
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }

    /// The query's pairs, decoded (`filter%5Benvironment_scope%5D` is `filter[environment_scope]`).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// The access token: `PRIVATE-TOKEN`, `Authorization: Bearer`, or `?private_token=` /
    /// `?access_token=`, in that order.
    pub fn credential(&self) -> Option<String> {
        if let Some(token) = &self.private_token {
            return Some(token.clone());
        }
        if let Some(token) = self
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
        {
            return Some(token.trim().to_owned());
        }
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == "private_token" || k == "access_token")
            .map(|(_, v)| v)
    }

    fn media_type(&self) -> String {
        self.content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }
}

/// A request's parameters: the query, then the body (JSON, form or multipart) over it.
/// Nested JSON objects are flattened one level, so `{"filter": {"environment_scope": "x"}}`
/// and `?filter[environment_scope]=x` read the same.
#[derive(Debug, Default)]
pub struct Params {
    values: BTreeMap<String, Value>,
}

impl Params {
    pub fn parse(request: &Request) -> Result<Self, Reply> {
        let mut values = BTreeMap::new();
        for (key, value) in request.query_pairs() {
            values.insert(key, Value::String(value));
        }
        if !request.body.is_empty() {
            let media_type = request.media_type();
            match media_type.as_str() {
                "application/json" => {
                    let body: Value = serde_json::from_slice(&request.body)
                        .map_err(|_| reply::error(400, "The request body is not valid JSON"))?;
                    values.extend(Self::from_json(body).values);
                }
                "application/x-www-form-urlencoded" => {
                    for (key, value) in url::form_urlencoded::parse(&request.body).into_owned() {
                        values.insert(key, Value::String(value));
                    }
                }
                "multipart/form-data" => {
                    for (key, value) in multipart_fields(request) {
                        values.insert(key, Value::String(value));
                    }
                }
                other => {
                    return Err(reply::error(
                        415,
                        &format!("The provided content-type '{other}' is not supported."),
                    ));
                }
            }
        }
        Ok(Self { values })
    }

    /// The fields of a JSON object, nested objects flattened to `outer[inner]`.
    pub fn from_json(body: Value) -> Self {
        let mut values = BTreeMap::new();
        if let Value::Object(fields) = body {
            for (key, value) in fields {
                match value {
                    Value::Object(inner) => {
                        for (sub, value) in inner {
                            values.insert(format!("{key}[{sub}]"), value);
                        }
                    }
                    value => {
                        values.insert(key, value);
                    }
                }
            }
        }
        Self { values }
    }

    pub fn has(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(v) if !v.is_null())
    }

    /// Every parameter as text, for the pagination links.
    pub fn texts(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .filter_map(|(k, v)| text_of(v).map(|t| (k.clone(), t)))
            .collect()
    }

    /// A `String` parameter: numbers and booleans become text, `null` is absent.
    pub fn string(&self, name: &str, errors: &mut Vec<String>) -> Option<String> {
        let value = self.values.get(name)?;
        if value.is_null() {
            return None;
        }
        let text = text_of(value);
        if text.is_none() {
            errors.push(format!("{name} is invalid"));
        }
        text
    }

    /// A `Boolean` parameter, coerced as Grape coerces one (`true`, `"1"`, `"yes"`, ...).
    pub fn boolean(&self, name: &str, errors: &mut Vec<String>) -> Option<bool> {
        let value = self.values.get(name)?;
        let parsed = match value {
            Value::Null => return None,
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
                "false" | "f" | "0" | "no" | "n" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            errors.push(format!("{name} is invalid"));
        }
        parsed
    }

    /// An `Integer` parameter.
    pub fn integer(&self, name: &str, errors: &mut Vec<String>) -> Option<i64> {
        let value = self.values.get(name)?;
        let parsed = match value {
            Value::Null => return None,
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if parsed.is_none() {
            errors.push(format!("{name} is invalid"));
        }
        parsed
    }

    /// `filter[environment_scope]`, the one filter the variables endpoints know.
    pub fn environment_scope_filter(&self, errors: &mut Vec<String>) -> Option<String> {
        self.string("filter[environment_scope]", errors)
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `%XX` escapes decoded (and `+` kept: this is a path, not a form).
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The text fields of a `multipart/form-data` body (`curl --form key=value`, as GitLab's docs
/// write their examples); file parts are read as text too.
fn multipart_fields(request: &Request) -> Vec<(String, String)> {
    let Some(boundary) = request
        .content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
    else {
        return Vec::new();
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let body = String::from_utf8_lossy(&request.body);
    let mut fields = Vec::new();
    for part in body.split(boundary.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let name = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .flat_map(|l| l.split(';'))
            .filter_map(|p| p.trim().strip_prefix("name="))
            .next()
            .map(|n| n.trim_matches('"').to_owned());
        if let Some(name) = name {
            let value = value.strip_suffix("\r\n").unwrap_or(value);
            fields.push((name, value.to_owned()));
        }
    }
    fields
}
