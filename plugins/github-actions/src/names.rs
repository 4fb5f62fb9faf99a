//! GitHub's rules for secret names, on config text and on rendered names (upper-cased).

use opsync_destination_kit::template::Template;
use opsync_destination_kit::{PluginError, misconfigured};

/// The rules, for messages.
pub(crate) const NAME_RULES: &str = "a secret name holds only letters, digits and `_`, and \
                                     starts with neither a digit nor `GITHUB_`";

/// The prefix GitHub keeps for its own secrets (compared without case).
const RESERVED_PREFIX: &str = "GITHUB_";

/// Which rule `name` breaks, if any.
pub(crate) fn broken_rule(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("holds a character other than a letter, a digit or `_`");
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Some("starts with a digit");
    }
    if name
        .get(..RESERVED_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX))
    {
        return Some("starts with `GITHUB_`, which GitHub keeps for itself");
    }
    None
}

/// `name` as GitHub stores it (upper case), or the rule it breaks.
pub(crate) fn secret_name(name: &str) -> Result<String, &'static str> {
    let upper = name.to_ascii_uppercase();
    match broken_rule(&upper) {
        Some(rule) => Err(rule),
        None => Ok(upper),
    }
}

/// Refuses literal text of the `name` template that no secret name may hold: a character other
/// than a letter, a digit or `_` anywhere, and a leading digit or `GITHUB_` (placeholders are
/// checked once rendered).
pub(crate) fn check_template_literals(text: &str, template: &Template) -> Result<(), PluginError> {
    let bad =
        |why: String| misconfigured(format!("`name` template `{text}`: {why} ({NAME_RULES})"));
    if let Some(c) = template
        .literal_text()
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(bad(format!("`{c}` cannot be in a secret name")));
    }
    // The text before the first placeholder starts every name the template renders.
    let lead = template.leading_literal();
    if lead.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad("every name it renders would start with a digit".into()));
    }
    if lead
        .get(..RESERVED_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX))
    {
        return Err(bad(
            "every name it renders would start with `GITHUB_`".into()
        ));
    }
    Ok(())
}

/// One entry of `fields`: a field (id or label) and the secret it is written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldSecret {
    pub(crate) field: String,
    /// Upper case, as GitHub stores it.
    pub(crate) name: String,
}

/// Parses the `fields` entries, each `FIELD=NAME` (split at the last `=`: a name cannot hold
/// one). Names are upper-cased and must follow GitHub's rules; no two entries may name the same
/// secret.
pub(crate) fn parse_fields(entries: &[String]) -> Result<Vec<FieldSecret>, PluginError> {
    if entries.is_empty() {
        return Err(misconfigured(
            "`fields` is empty: write FIELD=NAME,FIELD=NAME",
        ));
    }
    let mut parsed: Vec<FieldSecret> = Vec::new();
    for entry in entries {
        let bad = |why: String| misconfigured(format!("`fields` entry `{entry}`: {why}"));
        let (field, name) = entry
            .rsplit_once('=')
            .map(|(f, n)| (f.trim(), n.trim()))
            .ok_or_else(|| bad("write it as FIELD=NAME".into()))?;
        if field.is_empty() {
            return Err(bad("the field is empty (write FIELD=NAME)".into()));
        }
        let name = secret_name(name)
            .map_err(|rule| bad(format!("the secret name `{name}` {rule} ({NAME_RULES})")))?;
        if parsed.iter().any(|p| p.name == name) {
            return Err(misconfigured(format!(
                "`fields` names the secret `{name}` twice (GitHub secret names ignore case)"
            )));
        }
        parsed.push(FieldSecret {
            field: field.to_string(),
            name,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_follow_githubs_rules_and_are_upper_cased() {
        for (given, stored) in [
            ("DB_PASSWORD", "DB_PASSWORD"),
            ("db_password", "DB_PASSWORD"),
            ("Api_Key_2", "API_KEY_2"),
            ("_X", "_X"),
            ("GITHUB", "GITHUB"),
            ("GITHUBX_Y", "GITHUBX_Y"),
            ("MY_GITHUB_TOKEN", "MY_GITHUB_TOKEN"),
        ] {
            assert_eq!(secret_name(given).as_deref(), Ok(stored), "{given}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("DB-PASSWORD", "other than"),
            ("DB.PASSWORD", "other than"),
            ("DB PASSWORD", "other than"),
            ("CAFÉ", "other than"),
            ("2FA", "digit"),
            ("GITHUB_TOKEN", "GITHUB_"),
            ("github_token", "GITHUB_"),
            ("GitHub_Anything", "GITHUB_"),
        ] {
            let err = secret_name(bad).expect_err(bad);
            assert!(err.contains(rule), "{bad}: {err}");
        }
    }

    fn parsed(text: &str) -> Template {
        Template::parse("name", text).expect("a template")
    }

    #[test]
    fn template_literals_must_fit_a_name() {
        for good in [
            "{{title | upper_snake}}",
            "PROD_{{title|upper_snake}}",
            "{{vault|upper_snake}}_{{title|upper_snake}}_V{{version}}",
            "{{id}}",
            "GIT_{{title}}",
            "GITHUB{{title}}",
        ] {
            assert!(
                check_template_literals(good, &parsed(good)).is_ok(),
                "{good}"
            );
        }
        for (bad, why) in [
            ("PROD-{{title|upper_snake}}", "`-`"),
            ("{{title}}.KEY", "`.`"),
            ("A/{{id}}", "`/`"),
            ("1_{{title}}", "digit"),
            ("GITHUB_{{title}}", "GITHUB_"),
            ("github_x_{{title}}", "GITHUB_"),
        ] {
            let err = check_template_literals(bad, &parsed(bad)).expect_err(bad);
            assert!(
                matches!(&err, PluginError::Misconfigured(m) if m.contains("`name`") && m.contains(why)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn fields_map_fields_to_literal_names() {
        let parsed = parse_fields(&entries(&[
            "username=DB_USER",
            " password = db_password ",
            "a=b=C",
        ]))
        .expect("valid");
        assert_eq!(
            parsed,
            vec![
                FieldSecret {
                    field: "username".into(),
                    name: "DB_USER".into()
                },
                FieldSecret {
                    field: "password".into(),
                    name: "DB_PASSWORD".into()
                },
                FieldSecret {
                    field: "a=b".into(),
                    name: "C".into()
                },
            ]
        );
        for bad in [
            &["password"][..],
            &["=NAME"],
            &["password="],
            &["password=DB-PASSWORD"],
            &["password=GITHUB_TOKEN"],
            &["password=1X"],
            &["a=X", "b=x"],
            &[],
        ] {
            let err = parse_fields(&entries(bad)).expect_err("bad");
            assert!(
                matches!(&err, PluginError::Misconfigured(m) if m.contains("`fields`")),
                "{bad:?}: {err:?}"
            );
        }
    }
}
