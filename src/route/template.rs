//! Name templates: a route's destination key for an item, such as `{vault}/{title}`.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::connect::model::Item;

/// What a template may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    Vault,
    VaultId,
    Title,
    ItemId,
    Category,
}

/// The placeholders a template may use, for error messages.
pub const PLACEHOLDERS: &[&str] = &["vault", "vault_id", "title", "item_id", "category"];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Slot(Placeholder),
}

/// A parsed template: literal text and `{placeholder}`s; `{{` and `}}` are literal braces.
#[derive(Clone, PartialEq, Eq)]
pub struct NameTemplate {
    source: String,
    parts: Vec<Part>,
}

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown placeholder {{{name}}} (expected one of {})", PLACEHOLDERS.join(", "))]
    Unknown { name: String },
    #[error("unclosed {{ in the template")]
    Unclosed,
    #[error("a lone }} in the template (write }}}} for a brace)")]
    LoneClose,
    #[error("the template is empty")]
    Empty,
}

/// The default: the vault's name, a slash, the item's title.
pub const DEFAULT_TEMPLATE: &str = "{vault}/{title}";

impl NameTemplate {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::LoneClose),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(TemplateError::Unclosed),
                        }
                    }
                    let slot = match name.trim() {
                        "vault" => Placeholder::Vault,
                        "vault_id" => Placeholder::VaultId,
                        "title" | "item" => Placeholder::Title,
                        "item_id" => Placeholder::ItemId,
                        "category" => Placeholder::Category,
                        _ => return Err(TemplateError::Unknown { name }),
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Slot(slot));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The key of `item` in the vault named `vault_name`. Only non-secret metadata is used.
    pub fn render(&self, vault_name: &str, item: &Item) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Slot(Placeholder::Vault) => out.push_str(vault_name),
                Part::Slot(Placeholder::VaultId) => out.push_str(&item.vault.id),
                Part::Slot(Placeholder::Title) => out.push_str(&item.title),
                Part::Slot(Placeholder::ItemId) => out.push_str(&item.id),
                Part::Slot(Placeholder::Category) => out.push_str(item.category.as_str()),
            }
        }
        out
    }
}

impl Default for NameTemplate {
    fn default() -> Self {
        Self::parse(DEFAULT_TEMPLATE).expect("the default template parses")
    }
}

impl fmt::Debug for NameTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameTemplate({:?})", self.source)
    }
}

impl Serialize for NameTemplate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::model::{Category, IdRef};

    #[test]
    fn renders_placeholders_and_escaped_braces() {
        let mut item = Item::new("db", Category::Database);
        item.id = "i1".into();
        item.vault = IdRef { id: "v1".into() };
        let t = NameTemplate::parse("{{x}}/{vault}/{vault_id}/{title}/{item_id}/{category}")
            .expect("parses");
        assert_eq!(t.render("Prod", &item), "{x}/Prod/v1/db/i1/DATABASE");
        assert_eq!(NameTemplate::default().render("Prod", &item), "Prod/db");
    }

    #[test]
    fn rejects_bad_templates() {
        assert_eq!(
            NameTemplate::parse("{password}"),
            Err(TemplateError::Unknown {
                name: "password".into()
            })
        );
        assert_eq!(NameTemplate::parse("{vault"), Err(TemplateError::Unclosed));
        assert_eq!(NameTemplate::parse("a}b"), Err(TemplateError::LoneClose));
        assert_eq!(NameTemplate::parse(" "), Err(TemplateError::Empty));
    }
}
