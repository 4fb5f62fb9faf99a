//! Variable keys: GitLab's rule, the `key` template and the `fields` entries.
//!
//! Literal text is checked when the config loads; the keys rendered for an item, per item.

use opsync_destination_kit::naming::Naming;
use opsync_destination_kit::template::{Named, Template};
use opsync_destination_kit::{PluginError, misconfigured, permanent};

use crate::describe;

/// The default `key` template.
pub(crate) const DEFAULT_KEY: &str = "{{title | upper_snake}}";
/// The longest key GitLab accepts.
pub(crate) const KEY_MAX: usize = 255;
/// What a key may be, for messages.
pub(crate) const KEY_RULE: &str = "only `A-Z`, `a-z`, `0-9` and `_`, 1 to 255 characters";

/// GitLab's rule for a variable key: `[A-Za-z0-9_]`, 1 to 255 characters.
pub(crate) fn is_variable_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= KEY_MAX && s.bytes().all(key_byte)
}

fn key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where a variable's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The item's first concealed field that has a value (`field` unset).
    FirstConcealed,
    /// A field id or label.
    Field(String),
}

/// One variable each item writes: where its value comes from and how its key is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) source: Source,
    pub(crate) key: Naming,
    /// The key template's text and the config key it came from, for messages.
    pub(crate) key_text: String,
    pub(crate) config_key: &'static str,
}

impl Entry {
    /// The key for `item`; none for the deletion of a renamed item's old key when the key does
    /// not follow the title (the item's variable is still its own).
    pub(crate) fn key(&self, item: &impl Named) -> Result<Option<String>, PluginError> {
        self.key.name(item)
    }

    /// Refuses a rendered key GitLab would refuse, naming the item, the key and the rule.
    pub(crate) fn check(&self, item: &impl Named, key: &str) -> Result<(), PluginError> {
        if is_variable_key(key) {
            return Ok(());
        }
        let fix = match self.config_key {
            "fields" => "change that `fields` entry",
            _ => "change `key` (`{{title | upper_snake}}` makes a key of the title)",
        };
        Err(permanent(format!(
            "{}: the variable key `{key}` rendered from `{}` (`{}`) is not a GitLab variable \
             key ({KEY_RULE}); {fix}",
            describe(item),
            self.config_key,
            self.key_text
        )))
    }
}

/// The entries of the config: each `fields` entry `FIELD=KEY`, or else one variable whose value
/// is `field` (default: the first concealed field) and whose key is `key` (default
/// [`DEFAULT_KEY`]). `fields` with `key` or `field` is refused.
pub(crate) fn entries(
    fields: &[String],
    key: Option<&str>,
    field: Option<&str>,
) -> Result<Vec<Entry>, PluginError> {
    if fields.is_empty() {
        let field = field.map(str::trim);
        if field == Some("") {
            return Err(misconfigured(
                "`field` is empty: give a field id or label, or leave it unset for the item's \
                 first concealed field",
            ));
        }
        let key_text = key.unwrap_or(DEFAULT_KEY).trim().to_string();
        return Ok(vec![Entry {
            source: field.map_or(Source::FirstConcealed, |f| Source::Field(f.to_string())),
            key: Naming::Own(key_template("key", &key_text)?),
            key_text,
            config_key: "key",
        }]);
    }
    for (set, name) in [(key.is_some(), "key"), (field.is_some(), "field")] {
        if set {
            return Err(misconfigured(format!(
                "`fields` names the field and the key of each variable; `{name}` does not apply \
                 with it (write `fields = \"FIELD=KEY,...\"`, or `field` and `key` without \
                 `fields`)"
            )));
        }
    }
    let mut out: Vec<Entry> = Vec::with_capacity(fields.len());
    for entry in fields {
        let bad = |why: &str| misconfigured(format!("`fields` entry `{entry}`: {why}"));
        // Keys cannot hold `=`: split at the last one.
        let Some((field, key_text)) = entry.rsplit_once('=') else {
            return Err(bad(
                "write it as FIELD=KEY (a field id or label, and the variable key)",
            ));
        };
        let (field, key_text) = (field.trim(), key_text.trim());
        if field.is_empty() {
            return Err(bad("the field is empty (write FIELD=KEY)"));
        }
        if key_text.is_empty() {
            return Err(bad("the key is empty (write FIELD=KEY)"));
        }
        let template = key_template("fields", key_text)?;
        if out.iter().any(|e| e.key_text == key_text) {
            return Err(misconfigured(format!(
                "`fields` gives the key `{key_text}` to two fields"
            )));
        }
        out.push(Entry {
            source: Source::Field(field.to_string()),
            key: Naming::Own(template),
            key_text: key_text.to_string(),
            config_key: "fields",
        });
    }
    Ok(out)
}

/// Parses a key template of config key `config_key`: a kit template whose literal text holds only
/// key characters, and that is a whole valid key when it has no placeholder.
pub(crate) fn key_template(config_key: &str, text: &str) -> Result<Template, PluginError> {
    let template = Template::parse(config_key, text)?;
    let literal = template.literal_text();
    let bad = |why: String| misconfigured(format!("`{config_key}` key `{text}`: {why}"));
    if let Some(c) = literal
        .chars()
        .find(|c| !u8::try_from(*c).is_ok_and(key_byte))
    {
        return Err(bad(format!(
            "`{c}` cannot be in a variable key ({KEY_RULE})"
        )));
    }
    if literal.len() > KEY_MAX || (!text.contains("{{") && !is_variable_key(text)) {
        return Err(bad(format!("it is not a variable key ({KEY_RULE})")));
    }
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::event;
    use opsync_destination_kit::ChangeKind;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn misconfigured_with(result: Result<impl Sized, PluginError>, words: &[&str]) -> bool {
        matches!(&result, Err(PluginError::Misconfigured(m)) if words.iter().all(|w| m.contains(w)))
    }

    #[test]
    fn gitlabs_key_rule() {
        for good in ["DB_PASSWORD", "a", "_", "2FA", "x_Y_9", &"K".repeat(255)] {
            assert!(is_variable_key(good), "{good}");
        }
        for bad in [
            "",
            "DB-PASSWORD",
            "db.password",
            "a b",
            "É",
            "a/b",
            &"K".repeat(256),
        ] {
            assert!(!is_variable_key(bad), "{bad}");
        }
    }

    #[test]
    fn the_default_is_one_variable_of_the_first_concealed_field_named_by_title() {
        let entries = entries(&[], None, None).expect("defaults");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].source, Source::FirstConcealed);
        assert_eq!(entries[0].key_text, DEFAULT_KEY);
        let e = event(ChangeKind::Updated);
        assert_eq!(
            entries[0].key(&e).expect("named").as_deref(),
            Some("ORDERS_DB")
        );
        let named = super::entries(&[], Some("DB_{{title|upper_snake}}"), Some("password"))
            .expect("key and field");
        assert_eq!(named[0].source, Source::Field("password".into()));
        assert_eq!(
            named[0].key(&e).expect("named").as_deref(),
            Some("DB_ORDERS_DB")
        );
        assert!(misconfigured_with(
            super::entries(&[], None, Some(" ")),
            &["`field` is empty"]
        ));
    }

    #[test]
    fn fields_map_each_field_to_a_key() {
        let parsed = entries(
            &list(&["password=DB_PASSWORD", " user name = DB_USER ", "a=b=C"]),
            None,
            None,
        )
        .expect("valid");
        let pairs: Vec<(Source, &str)> = parsed
            .iter()
            .map(|e| (e.source.clone(), e.key_text.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (Source::Field("password".into()), "DB_PASSWORD"),
                (Source::Field("user name".into()), "DB_USER"),
                (Source::Field("a=b".into()), "C"),
            ]
        );
        assert!(parsed.iter().all(|e| e.config_key == "fields"));
        // A key may be a template too.
        let templated = entries(
            &list(&["password={{title|upper_snake}}_PASSWORD"]),
            None,
            None,
        )
        .expect("ok");
        assert_eq!(
            templated[0]
                .key(&event(ChangeKind::Created))
                .expect("named")
                .as_deref(),
            Some("ORDERS_DB_PASSWORD")
        );
    }

    #[test]
    fn fields_refuse_key_and_field_and_bad_entries() {
        let fields = list(&["password=DB_PASSWORD"]);
        assert!(misconfigured_with(
            entries(&fields, Some("X"), None),
            &["`fields`", "`key` does not apply"]
        ));
        assert!(misconfigured_with(
            entries(&fields, None, Some("password")),
            &["`fields`", "`field` does not apply"]
        ));
        for (bad, words) in [
            (
                &["password"][..],
                &["`fields` entry `password`", "FIELD=KEY"][..],
            ),
            (&["=KEY"], &["the field is empty"]),
            (&["password="], &["the key is empty"]),
            (
                &["password=DB-PASSWORD"],
                &["`-` cannot be in a variable key"],
            ),
            (&["a=K", "b=K"], &["the key `K` to two fields"]),
            (&["p={{nope}}"], &["unknown placeholder"]),
        ] {
            assert!(
                misconfigured_with(entries(&list(bad), None, None), words),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_literals_are_checked_at_load() {
        for good in [
            DEFAULT_KEY,
            "DB_PASSWORD",
            "{{id}}",
            "CI_{{vault|upper_snake}}_{{title|upper_snake}}",
        ] {
            assert!(key_template("key", good).is_ok(), "{good}");
        }
        for (bad, words) in [
            (
                "db-{{title|upper_snake}}",
                &["`key` key", "`-` cannot be"][..],
            ),
            ("{{title}}.env", &["`.` cannot be"]),
            ("A/{{title}}", &["`/` cannot be"]),
            ("", &["empty"]),
        ] {
            assert!(misconfigured_with(key_template("key", bad), words), "{bad}");
        }
        let long = "K".repeat(256);
        assert!(misconfigured_with(
            key_template("key", &long),
            &["not a variable key"]
        ));
        assert!(misconfigured_with(
            key_template("key", &format!("{long}{{{{id}}}}")),
            &["not a variable key"]
        ));
    }

    #[test]
    fn rendered_keys_are_checked_per_item() {
        let entry = &entries(&[], Some("{{title}}"), None).expect("valid")[0];
        let mut e = event(ChangeKind::Updated);
        e.item.title = "orders.db".into();
        let key = entry.key(&e).expect("named").expect("some");
        assert_eq!(key, "orders.db");
        let err = entry.check(&e, &key).expect_err("a dot");
        assert!(
            matches!(&err, PluginError::Permanent(m)
                if m.contains("item `orders.db` (itm1)") && m.contains("`orders.db`")
                    && m.contains(KEY_RULE) && m.contains("change `key`")),
            "{err:?}"
        );
        assert!(entry.check(&e, "ORDERS_DB").is_ok());
    }

    #[test]
    fn a_renamed_items_old_key_follows_the_title_or_is_kept() {
        let mut old = event(ChangeKind::Deleted);
        old.renamed_to = Some("Prod/New title".into());
        let by_title = &entries(&[], None, None).expect("valid")[0];
        assert_eq!(
            by_title.key(&old).expect("named").as_deref(),
            Some("ORDERS_DB")
        );
        let literal = &entries(&list(&["password=DB_PASSWORD"]), None, None).expect("valid")[0];
        assert_eq!(literal.key(&old).expect("named"), None);
        // Not a deletion: the key is the item's.
        let mut update = event(ChangeKind::Updated);
        update.renamed_to = Some("x".into());
        assert_eq!(
            literal.key(&update).expect("named").as_deref(),
            Some("DB_PASSWORD")
        );
    }
}
