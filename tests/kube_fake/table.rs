//! `Table` answers (`Accept: ...;as=Table`), which `kubectl get` asks for without `-o`.

use serde_json::{Value, json};

/// Whether the client asked for a Table (kubectl lists it first, plain JSON as the fallback).
pub fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// `objects` (as GET returns them) in a Table with kubectl's columns for their kind.
pub fn of(objects: &[Value], resource_version: u64, now: chrono::DateTime<chrono::Utc>) -> Value {
    // An empty list gets the Secret columns: kubectl prints none of them anyway.
    let is_secret = objects.first().is_none_or(|o| o["kind"] == "Secret");
    let column = |name: &str, format: &str| {
        json!({
            "name": name,
            "type": "string",
            "format": format,
            "description": "",
            "priority": 0,
        })
    };
    let columns = if is_secret {
        vec![
            column("Name", "name"),
            column("Type", ""),
            column("Data", ""),
            column("Age", ""),
        ]
    } else {
        vec![column("Name", "name"), column("Age", "")]
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let age = age(&object["metadata"]["creationTimestamp"], now);
            let name = object["metadata"]["name"].clone();
            let cells = if is_secret {
                let data = object["data"].as_object().map_or(0, |d| d.len());
                json!([name, object["type"], data, age])
            } else {
                json!([name, age])
            };
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object["metadata"],
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// `42s`, `5m`, `3h`, `2d`: roughly kubectl's human durations.
fn age(created: &Value, now: chrono::DateTime<chrono::Utc>) -> String {
    let Some(created) = created
        .as_str()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
    else {
        return "<unknown>".into();
    };
    let seconds = (now - created.to_utc()).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
