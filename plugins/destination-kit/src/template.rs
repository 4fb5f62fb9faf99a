//! Name templates such as `prod/{{vault}}/{{title}}` or `{{title | slug}}`: parsed and checked
//! once, rendered per item with every value sanitized so it can never add path components. An item
//! is named the same way from a change ([`ItemEvent`]) and from `read-back`'s [`ItemRef`]: both
//! are [`Named`].

use crate::{ChangeKind, ItemEvent, ItemRef, PluginError, VaultRef, misconfigured};

/// What an item's destination name is made of, which a change and a `read-back` reference both
/// carry: the vault, the item's id, title, category, tags and version, and the route's key.
pub trait Named {
    fn vault(&self) -> &VaultRef;
    fn item_id(&self) -> &str;
    fn title(&self) -> &str;
    /// The Connect category, verbatim.
    fn category(&self) -> &str;
    fn tags(&self) -> &[String];
    fn version(&self) -> u64;
    /// The route's destination key (its `name_template` rendered); empty when the host sent none.
    fn key(&self) -> &str;
    /// For the deletion of a renamed item's old key: the item's new key. None otherwise.
    fn renamed_to(&self) -> Option<&str> {
        None
    }
}

impl Named for ItemEvent {
    fn vault(&self) -> &VaultRef {
        &self.vault
    }
    fn item_id(&self) -> &str {
        &self.item.id
    }
    fn title(&self) -> &str {
        &self.item.title
    }
    fn category(&self) -> &str {
        &self.item.category
    }
    fn tags(&self) -> &[String] {
        &self.item.tags
    }
    fn version(&self) -> u64 {
        self.item.version
    }
    fn key(&self) -> &str {
        &self.key
    }
    /// Only a deletion deletes an old key.
    fn renamed_to(&self) -> Option<&str> {
        match self.kind {
            ChangeKind::Deleted => self.renamed_to.as_deref(),
            _ => None,
        }
    }
}

impl Named for ItemRef {
    fn vault(&self) -> &VaultRef {
        &self.vault
    }
    fn item_id(&self) -> &str {
        &self.id
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn category(&self) -> &str {
        &self.category
    }
    fn tags(&self) -> &[String] {
        &self.tags
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn key(&self) -> &str {
        &self.key
    }
}

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["vault", "vault_id", "title", "id", "category", "version"];

/// The filters a placeholder may go through (`{{title | slug}}`, `{{title | upper_snake}}`).
pub const FILTERS: &[&str] = &["slug", "upper_snake"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    Vault,
    VaultId,
    Title,
    Id,
    Category,
    Version,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    /// [`slug`].
    Slug,
    /// [`upper_snake`].
    UpperSnake,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Value(Placeholder, Option<Filter>),
}

/// A checked template: a relative `/`-separated name without empty or `..` parts, whose literal
/// text uses only letters, digits and `/ . _ - + = @`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`, the value of config key `key` (named in error messages).
    pub fn parse(key: &str, text: &str) -> Result<Self, PluginError> {
        let bad = |why: String| misconfigured(format!("`{key}` template `{text}`: {why}"));
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| bad("a `{{` is not closed".into()))?;
            let mut pipeline = after[..end].split('|').map(str::trim);
            let placeholder = match pipeline.next().unwrap_or_default() {
                "vault" => Placeholder::Vault,
                "vault_id" => Placeholder::VaultId,
                "title" => Placeholder::Title,
                "id" => Placeholder::Id,
                "category" => Placeholder::Category,
                "version" => Placeholder::Version,
                other => {
                    return Err(bad(format!(
                        "unknown placeholder `{other}` (known: {})",
                        PLACEHOLDERS.join(", ")
                    )));
                }
            };
            let filter = match pipeline.next() {
                None => None,
                Some("slug") => Some(Filter::Slug),
                Some("upper_snake") => Some(Filter::UpperSnake),
                Some(other) => {
                    return Err(bad(format!(
                        "unknown filter `{other}` (known: {})",
                        FILTERS.join(", ")
                    )));
                }
            };
            if pipeline.next().is_some() {
                return Err(bad("a placeholder takes at most one filter".into()));
            }
            parts.push(Part::Value(placeholder, filter));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        for part in &parts {
            if let Part::Literal(literal) = part
                && let Some(c) = literal.chars().find(|c| !literal_char(*c))
            {
                return Err(bad(format!("the character `{c}` is not allowed")));
            }
        }
        if parts.is_empty() {
            return Err(bad("it is empty".into()));
        }
        // Placeholder values never contain `/` and are never empty or only dots, so checking the
        // template with a stand-in value checks every name it can render.
        let shape: String = parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.as_str(),
                Part::Value(..) => "x",
            })
            .collect();
        if shape.starts_with('/') || shape.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(bad(
                "it must be a relative name without empty or `..` parts".into(),
            ));
        }
        Ok(Self { parts })
    }

    /// The literal text, placeholders left out (`db-{{id}}.x` gives `db-.x`): what a plugin
    /// checks against its destination's own naming rules when the config loads.
    pub fn literal_text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Literal(l) => Some(l.as_str()),
                Part::Value(..) => None,
            })
            .collect()
    }

    /// The literal text before the first placeholder, which every rendered name starts with.
    pub fn leading_literal(&self) -> &str {
        match self.parts.first() {
            Some(Part::Literal(l)) => l,
            _ => "",
        }
    }

    /// Whether the template names the item by its title (so a rename changes the name).
    pub fn uses_title(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Value(Placeholder::Title, _)))
    }

    /// The name for `item` (a change, or a `read-back` reference).
    pub fn render(&self, item: &impl Named) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Value(p, filter) => {
                    let value = value_of(*p, item);
                    let value = match filter {
                        Some(Filter::Slug) => slug(&value),
                        Some(Filter::UpperSnake) => upper_snake(&value),
                        None => value,
                    };
                    out.push_str(&sanitize(&value));
                }
            }
        }
        out
    }
}

fn literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '=' | '@')
}

fn value_of(placeholder: Placeholder, item: &impl Named) -> String {
    match placeholder {
        Placeholder::Vault => item.vault().name.clone(),
        Placeholder::VaultId => item.vault().id.clone(),
        Placeholder::Title => item.title().to_string(),
        Placeholder::Id => item.item_id().to_string(),
        Placeholder::Category => item.category().to_lowercase(),
        Placeholder::Version => item.version().to_string(),
    }
}

/// Keeps letters, digits, `.`, `-` and `_`; anything else becomes `_`, and a value that is empty or
/// only dots becomes `_`, so a value can never climb out of its place in a path.
pub fn sanitize(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "_".to_string()
    } else {
        cleaned
    }
}

/// A lower-case rendering of `value` that is a DNS-1123 name (a Kubernetes object name, a host
/// name label) whenever it is not empty and not too long: lowercase; every run of characters
/// other than `a-z` and `0-9` becomes one `.` when it holds a `.`, else one `-`; leading and
/// trailing `-` and `.` are trimmed. `My DB (prod)` gives `my-db-prod`, `api.Example.com`
/// gives `api.example.com`, `Café` gives `caf`.
pub fn slug(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    // The separator of the run being skipped, written before the next letter or digit.
    let mut pending: Option<char> = None;
    for c in value.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if let Some(sep) = pending.take()
                && !out.is_empty()
            {
                out.push(sep);
            }
            out.push(c);
        } else if c == '.' {
            pending = Some('.');
        } else if pending.is_none() {
            pending = Some('-');
        }
    }
    out
}

/// `value` as an environment-variable-style name (CI/CD secret and variable names): upper case
/// ASCII letters and digits, every run of other characters as one `_`, none leading or
/// trailing. `Orders database (prod)` gives `ORDERS_DATABASE_PROD`, `Café` gives `CAF`.
pub fn upper_snake(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut gap = false;
    for c in value.chars().flat_map(char::to_uppercase) {
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Item;

    pub(crate) fn event(title: &str) -> ItemEvent {
        ItemEvent {
            idempotency_key: "route:itm:3:updated".into(),
            kind: ChangeKind::Updated,
            vault: VaultRef {
                id: "vlt1".into(),
                name: "Prod Vault".into(),
            },
            item: Item {
                id: "itm1".into(),
                title: title.into(),
                category: "API_CREDENTIAL".into(),
                tags: vec![],
                version: 3,
                urls: vec![],
                updated_at: None,
                fields: vec![],
                files: vec![],
            },
            key: format!("Prod Vault/{title}"),
            renamed_to: None,
        }
    }

    /// `event(title)` as `read-back` sees it.
    pub(crate) fn item_ref(title: &str) -> ItemRef {
        let event = event(title);
        ItemRef {
            key: event.key,
            vault: event.vault,
            id: event.item.id,
            title: event.item.title,
            category: event.item.category,
            tags: event.item.tags,
            version: event.item.version,
        }
    }

    fn parse(text: &str) -> Result<Template, PluginError> {
        Template::parse("name", text)
    }

    #[test]
    fn renders_placeholders_with_sanitized_values() {
        let t = parse("prod/{{vault}}/{{ title }}-v{{version}}").expect("valid");
        assert_eq!(t.render(&event("My DB")), "prod/Prod_Vault/My_DB-v3");
        let t = parse("{{category}}/{{vault_id}}/{{id}}").expect("valid");
        assert_eq!(t.render(&event("x")), "api_credential/vlt1/itm1");
    }

    #[test]
    fn a_change_and_its_read_back_reference_render_the_same_name() {
        for text in [
            "prod/{{vault}}/{{ title }}-v{{version}}",
            "{{category}}/{{vault_id}}/{{id}}",
        ] {
            let t = parse(text).expect("valid");
            assert_eq!(t.render(&event("My DB")), t.render(&item_ref("My DB")));
        }
    }

    #[test]
    fn values_cannot_add_or_climb_path_parts() {
        let t = parse("{{title}}").expect("valid");
        assert_eq!(t.render(&event("../../etc/passwd")), ".._.._etc_passwd");
        assert_eq!(t.render(&event("..")), "_");
        assert_eq!(t.render(&event("")), "_");
        assert_eq!(t.render(&event("a/b")), "a_b");
    }

    #[test]
    fn literal_text_leaves_the_placeholders_out() {
        let t = parse("db-{{vault|slug}}.{{id}}-x").expect("valid");
        assert_eq!(t.literal_text(), "db-.-x");
        assert_eq!(t.leading_literal(), "db-");
        let t = parse("{{id}}_V").expect("valid");
        assert_eq!(t.literal_text(), "_V");
        assert_eq!(t.leading_literal(), "");
    }

    #[test]
    fn the_upper_snake_filter_makes_variable_names() {
        let t = parse("{{title | upper_snake}}").expect("valid");
        assert_eq!(
            t.render(&event("Orders database (prod)")),
            "ORDERS_DATABASE_PROD"
        );
        for (value, named) in [
            ("api-key", "API_KEY"),
            ("  spaced  out ", "SPACED_OUT"),
            ("Café au lait", "CAF_AU_LAIT"),
            ("2fa codes", "2FA_CODES"),
        ] {
            assert_eq!(upper_snake(value), named, "{value:?}");
        }
    }

    #[test]
    fn the_slug_filter_makes_dns_names() {
        let t = parse("{{title | slug}}").expect("valid");
        assert_eq!(t.render(&event("My DB (prod)")), "my-db-prod");
        assert!(t.uses_title());
        assert_eq!(
            parse("db-{{vault|slug}}.{{title|slug}}")
                .expect("valid")
                .render(&event("Orders_DB")),
            "db-prod-vault.orders-db"
        );
        for (value, slugged) in [
            ("api.Example.com", "api.example.com"),
            ("  --Hello,  World!--  ", "hello-world"),
            ("a - b", "a-b"),
            ("a . b", "a.b"),
            ("a.-b", "a.b"),
            ("..x..", "x"),
            ("Café au lait", "caf-au-lait"),
            ("ÀB", "b"),
            ("v1.2.3", "v1.2.3"),
            ("", ""),
            ("!!!", ""),
        ] {
            assert_eq!(slug(value), slugged, "{value:?}");
        }
        // An empty slug renders as `_`, like any empty value.
        assert_eq!(t.render(&event("???")), "_");
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in [
            "",
            "{{nope}}",
            "{{title",
            "/abs/{{title}}",
            "a//{{title}}",
            "a/../{{title}}",
            "{{title}}/",
            "a b/{{title}}",
            "a?{{title}}",
            "{{title | upper}}",
            "{{title | slug | slug}}",
            "{{ | slug}}",
        ] {
            assert!(
                matches!(parse(bad), Err(PluginError::Misconfigured(_))),
                "{bad:?}"
            );
        }
    }
}
