//! Tests of JSON Patch on items: every op and path form Connect accepts, and the errors it answers.

use super::*;
use crate::connect::model::Category;

fn login() -> Item {
    parse_json(
        br#"{"id":"abcdefghijklmnopqrstuvwxyz","title":"t","category":"LOGIN","tags":["a","b"],
            "fields":[{"id":"username","type":"STRING","purpose":"USERNAME","value":"me"},
                      {"id":"password","type":"CONCEALED","purpose":"PASSWORD"}]}"#,
        "item",
    )
    .expect("fixture")
}

fn patch(item: &Item, body: &str) -> Result<Item, String> {
    apply(item, body.as_bytes())
        .map_err(|e| e.message().to_owned())?
        .ok_or_else(|| "no operations".to_owned())
}

#[test]
fn documented_forms() {
    let out = patch(
        &login(),
        r#"[{"op":"replace","path":"/title","value":"hello-world"},
            {"op":"replace","path":"/fields/password/value","value":"n3w"},
            {"op":"remove","path":"/fields/username"},
            {"op":"add","path":"/fields","value":{"label":"api_key","type":"CONCEALED","value":"abc"}},
            {"op":"add","path":"/tags/-","value":"c"},
            {"op":"remove","path":"/tags/0"},
            {"op":"replace","path":"/favorite","value":true}]"#,
    )
    .expect("applies");
    assert_eq!(out.title, "hello-world");
    assert_eq!(out.tags, vec!["b", "c"]);
    assert!(out.favorite);
    let fields = out.fields.expect("fields");
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0].value.as_ref().map(|v| v.expose()), Some("n3w"));
    assert_eq!(fields[1].label.as_deref(), Some("api_key"));
}

#[test]
fn root_replace_merges_attributes() {
    let out = patch(
        &login(),
        r#"[{"op":"replace","path":"/","value":{"title":"New","tags":["x"],"version":99,"id":"zz"}}]"#,
    )
    .expect("applies");
    assert_eq!(
        (out.title.as_str(), out.tags.as_slice()),
        ("New", &["x".to_owned()][..])
    );
    assert_eq!(out.id, "abcdefghijklmnopqrstuvwxyz");
    assert_eq!(out.category, Category::Login);
    assert!(out.fields.is_some());
}

#[test]
fn refuses_invalid_documents() {
    let item = login();
    for body in [
        r#"{"op":"replace","path":"/title","value":"x"}"#,
        r#"[{"op":"move","path":"/title","from":"/x"}]"#,
        r#"[{"op":"replace","path":"title","value":"x"}]"#,
        r#"[{"op":"replace","path":"/title"}]"#,
        r#"[{"op":"replace","path":"/version","value":5}]"#,
        r#"[{"op":"replace","path":"/fields/nope/value","value":"x"}]"#,
        r#"[{"op":"remove","path":"/tags/7"}]"#,
        r#"[{"op":"replace","path":"/title","value":7}]"#,
        r#"[{"op":"replace","path":"/fields/password/id","value":"x"}]"#,
        r#"[{"op":"remove","path":"/"}]"#,
        r#"[7]"#,
        "not json",
    ] {
        assert!(patch(&item, body).is_err(), "accepted {body}");
    }
    let msg = patch(
        &item,
        r#"[{"op":"replace","path":"/fields/nope/value","value":"x"}]"#,
    )
    .expect_err("unknown field");
    assert_eq!(msg, "The item doesn't have a nope field.");
}

#[test]
fn remove_and_replace_need_an_existing_target() {
    let item = login();
    for (body, path) in [
        (r#"[{"op":"replace","path":"/nope","value":"x"}]"#, "/nope"),
        (r#"[{"op":"remove","path":"/nope"}]"#, "/nope"),
        (
            r#"[{"op":"replace","path":"/fields/username/nope","value":"x"}]"#,
            "/fields/username/nope",
        ),
        (
            r#"[{"op":"remove","path":"/fields/password/value"}]"#,
            "/fields/password/value",
        ),
        (
            r#"[{"op":"replace","path":"/fields/password/recipe/nope","value":1}]"#,
            "/fields/password/recipe/nope",
        ),
    ] {
        let msg = patch(&item, body).expect_err(body);
        assert!(
            msg.starts_with(&format!(
                "Invalid JSON Patch path \"{path}\": does not exist"
            )),
            "{body}: {msg}"
        );
    }
    // Attributes the model has but leaves unset count as there for replace; add creates.
    let out = patch(
        &item,
        r#"[{"op":"replace","path":"/fields/password/value","value":"v"},
            {"op":"replace","path":"/fields/password/label","value":"pw"},
            {"op":"replace","path":"/fields/password/generate","value":false},
            {"op":"remove","path":"/fields/username/value"},
            {"op":"add","path":"/fields/username/label","value":"user"}]"#,
    )
    .expect("applies");
    let fields = out.fields.expect("fields");
    assert_eq!(fields[0].label.as_deref(), Some("user"));
    assert!(fields[0].value.is_none());
    assert_eq!(fields[1].label.as_deref(), Some("pw"));
    assert_eq!(fields[1].value.as_ref().map(|v| v.expose()), Some("v"));
}

#[test]
fn empty_patch_changes_nothing() {
    assert_eq!(
        apply(&login(), b"[]").map_err(|e| e.message().to_owned()),
        Ok(None)
    );
    let item = login();
    let same = patch(&item, r#"[{"op":"replace","path":"/title","value":"t"}]"#).expect("applies");
    assert_eq!(same, item);
}
