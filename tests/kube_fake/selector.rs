//! Label and field selectors of list requests (`labelSelector`, `fieldSelector`).

use std::collections::BTreeMap;

/// One comma-separated term of a selector.
#[derive(Debug)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector; the empty one matches everything.
#[derive(Debug, Default)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma-joined.
    pub fn labels(text: &str) -> Result<Self, String> {
        split_terms(text)
            .into_iter()
            .map(|term| requirement(&term))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// `metadata.name=x`, `metadata.namespace!=y`, `type=Opaque`: the fields Secrets can be
    /// selected by (only `=`, `==` and `!=`).
    pub fn fields(text: &str) -> Result<Self, String> {
        let selector = Self::labels(text)?;
        for term in &selector.0 {
            let key = match term {
                Requirement::Equals(key, _) | Requirement::NotEquals(key, _) => key,
                _ => return Err(format!("invalid field selector: {text}")),
            };
            if !["metadata.name", "metadata.namespace", "type"].contains(&key.as_str()) {
                return Err(format!("field label not supported: {key}"));
            }
        }
        Ok(selector)
    }

    pub fn matches(&self, values: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|term| match term {
            Requirement::Equals(k, v) => values.get(k) == Some(v),
            Requirement::NotEquals(k, v) => values.get(k) != Some(v),
            Requirement::In(k, vs) => values.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => values.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => values.contains_key(k),
            Requirement::NotExists(k) => !values.contains_key(k),
        })
    }
}

/// Splits on the commas outside parentheses.
fn split_terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !text.trim().is_empty() {
        terms.push(current);
    }
    terms
}

fn requirement(term: &str) -> Result<Requirement, String> {
    let term = term.trim();
    let invalid = || format!("unable to parse requirement: found '{term}', expected: identifier");
    let key = |k: &str| {
        let k = k.trim();
        if k.is_empty() || k.contains(|c: char| c.is_whitespace() || "=!()".contains(c)) {
            Err(invalid())
        } else {
            Ok(k.to_owned())
        }
    };
    if let Some(rest) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key(rest)?));
    }
    for (word, notin) in [(" notin ", true), (" in ", false)] {
        if let Some((k, values)) = term.split_once(word) {
            let values = values
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(invalid)?;
            let values = values.split(',').map(|v| v.trim().to_owned()).collect();
            return Ok(if notin {
                Requirement::NotIn(key(k)?, values)
            } else {
                Requirement::In(key(k)?, values)
            });
        }
    }
    for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = term.split_once(op) {
            let (k, v) = (key(k)?, v.trim().to_owned());
            return Ok(if negated {
                Requirement::NotEquals(k, v)
            } else {
                Requirement::Equals(k, v)
            });
        }
    }
    Ok(Requirement::Exists(key(term)?))
}
