//! Serde types for the Connect API, faithful to the spec and to what real servers send.
//!
//! Enumerations keep values they do not know (`Other`), so a newer server never breaks
//! deserialisation. Secret field values are wrapped in [`SecretString`], whose `Debug`
//! is redacted.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::VaultRef;

mod server;

pub use server::{
    ActivityActor, ActivityResource, ApiRequest, ErrorBody, ServerHealth, ServiceDependency,
};

/// Declares a string enumeration that round-trips unknown values through `Other`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, Debug)]
        pub enum $name {
            $($variant,)+
            /// A value this version of opsync does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($text => Self::$variant,)+
                    _ => Self::Other(s),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::from)
            }
        }
    };
}

open_enum!(
    /// Vault type.
    VaultType {
        UserCreated => "USER_CREATED",
        Personal => "PERSONAL",
        Everyone => "EVERYONE",
        Transfer => "TRANSFER",
    }
);

open_enum!(
    /// Item category.
    Category {
        Login => "LOGIN",
        Password => "PASSWORD",
        ApiCredential => "API_CREDENTIAL",
        Server => "SERVER",
        Database => "DATABASE",
        CreditCard => "CREDIT_CARD",
        Membership => "MEMBERSHIP",
        Passport => "PASSPORT",
        SoftwareLicense => "SOFTWARE_LICENSE",
        OutdoorLicense => "OUTDOOR_LICENSE",
        SecureNote => "SECURE_NOTE",
        WirelessRouter => "WIRELESS_ROUTER",
        BankAccount => "BANK_ACCOUNT",
        DriverLicense => "DRIVER_LICENSE",
        Identity => "IDENTITY",
        RewardProgram => "REWARD_PROGRAM",
        Document => "DOCUMENT",
        EmailAccount => "EMAIL_ACCOUNT",
        SocialSecurityNumber => "SOCIAL_SECURITY_NUMBER",
        MedicalRecord => "MEDICAL_RECORD",
        SshKey => "SSH_KEY",
        Custom => "CUSTOM",
    }
);

open_enum!(
    /// Field type. Real servers send `OTP` where the spec says `TOTP`.
    FieldType {
        String => "STRING",
        Email => "EMAIL",
        Concealed => "CONCEALED",
        Url => "URL",
        Otp => "OTP",
        Totp => "TOTP",
        Date => "DATE",
        MonthYear => "MONTH_YEAR",
        Menu => "MENU",
        Address => "ADDRESS",
        CreditCardNumber => "CREDIT_CARD_NUMBER",
        CreditCardType => "CREDIT_CARD_TYPE",
        Gender => "GENDER",
        Phone => "PHONE",
        Reference => "REFERENCE",
        File => "FILE",
        SshKey => "SSHKEY",
        Unknown => "UNKNOWN",
    }
);

open_enum!(
    /// Field purpose; the empty string means none.
    FieldPurpose {
        None => "",
        Username => "USERNAME",
        Password => "PASSWORD",
        Notes => "NOTES",
    }
);

open_enum!(
    /// Item state (read-only).
    ItemState {
        Archived => "ARCHIVED",
        Deleted => "DELETED",
    }
);

open_enum!(
    /// Character set of a generator recipe.
    CharacterSet {
        Letters => "LETTERS",
        Digits => "DIGITS",
        Symbols => "SYMBOLS",
    }
);

open_enum!(
    /// Activity record action.
    ActivityAction {
        Read => "READ",
        Create => "CREATE",
        Update => "UPDATE",
        Delete => "DELETE",
    }
);

open_enum!(
    /// Activity record result.
    ActivityResult {
        Success => "SUCCESS",
        Deny => "DENY",
    }
);

open_enum!(
    /// Activity record resource type.
    ResourceType {
        Item => "ITEM",
        Vault => "VAULT",
    }
);

open_enum!(
    /// JSON Patch operation kinds Connect supports.
    PatchOpKind {
        Add => "add",
        Remove => "remove",
        Replace => "replace",
    }
);

/// A string that must never be printed: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; call only where the value is really needed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A vault as `GET /v1/vaults` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vault {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub attribute_version: u64,
    #[serde(default)]
    pub content_version: u64,
    /// Number of active items.
    #[serde(default)]
    pub items: u64,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub vault_type: Option<VaultType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Vault {
    /// The vault by id and name, as routes select it and plugins see it.
    pub fn reference(&self) -> VaultRef {
        VaultRef {
            id: self.id.clone(),
            name: self.name.clone(),
        }
    }
}

/// `{"id": ...}`: how items, fields and files point at a vault or section.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdRef {
    #[serde(default)]
    pub id: String,
}

/// A URL of an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemUrl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary: bool,
    pub href: String,
}

/// An item section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The recipe a server uses for `generate: true`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRecipe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub character_sets: Option<Vec<CharacterSet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_characters: Option<String>,
}

/// A field of a full item. Its value is a secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "default_field_type")]
    pub field_type: FieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<IdRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<FieldPurpose>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretString>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<GeneratorRecipe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    /// The current one-time code of an OTP field (read-only). The JS SDK calls it `otp`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "otp")]
    pub totp: Option<SecretString>,
}

fn default_field_type() -> FieldType {
    FieldType::String
}

/// A file attached to an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub size: u64,
    /// `/v1/vaults/{v}/items/{i}/files/{f}/content`, with a leading slash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<IdRef>,
    /// Base64 content, present only when inlined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<SecretString>,
}

/// An item. List calls return summaries (`sections`, `fields` and `files` are `None`);
/// `GET` of one item returns the full item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub vault: IdRef,
    pub category: Category,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<ItemUrl>,
    #[serde(default)]
    pub favorite: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ItemState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_edited_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<Section>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<Field>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<File>>,
}

impl Item {
    /// A new item for `create_item`: the server fills id, version and timestamps.
    pub fn new(title: impl Into<String>, category: Category) -> Self {
        Self {
            id: String::new(),
            title: title.into(),
            vault: IdRef::default(),
            category,
            urls: Vec::new(),
            favorite: false,
            tags: Vec::new(),
            version: 0,
            state: None,
            created_at: None,
            updated_at: None,
            last_edited_by: None,
            sections: None,
            fields: None,
            files: None,
        }
    }

    /// The same item without sections, fields and files, as list calls return it.
    pub fn summary(&self) -> Self {
        Self {
            sections: None,
            fields: None,
            files: None,
            ..self.clone()
        }
    }

    /// The field with this id, or failing that, this label.
    pub fn field(&self, id_or_label: &str) -> Option<&Field> {
        let fields = self.fields.as_deref().unwrap_or_default();
        fields.iter().find(|f| f.id == id_or_label).or_else(|| {
            fields
                .iter()
                .find(|f| f.label.as_deref() == Some(id_or_label))
        })
    }
}

/// One operation of a Connect JSON Patch document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchOp {
    pub op: PatchOpKind,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// `true` when `s` has the shape of a Connect vault, item or file id: 26 of `[a-z0-9]`.
pub fn is_connect_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_round_trip() {
        let f: Field =
            serde_json::from_str(r#"{"id":"x","type":"BRAND_NEW","purpose":"WHATEVER"}"#)
                .expect("parses");
        assert_eq!(f.field_type, FieldType::Other("BRAND_NEW".into()));
        let back = serde_json::to_value(&f).expect("serialises");
        assert_eq!(back["type"], "BRAND_NEW");
        assert_eq!(back["purpose"], "WHATEVER");
    }

    #[test]
    fn secret_values_are_redacted_in_debug() {
        let f: Field =
            serde_json::from_str(r#"{"id":"password","type":"CONCEALED","value":"hunter2"}"#)
                .expect("parses");
        let dbg = format!("{f:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn summary_drops_details() {
        let mut item = Item::new("t", Category::Login);
        item.fields = Some(vec![]);
        let v = serde_json::to_value(item.summary()).expect("serialises");
        assert!(v.get("fields").is_none());
        assert!(v.get("vault").is_some());
    }

    #[test]
    fn connect_ids() {
        assert!(is_connect_id("hfnjvi6aymbsnfc2xeeoheizda"));
        assert!(!is_connect_id("HFNJVI6AYMBSNFC2XEEOHEIZDA"));
        assert!(!is_connect_id("short"));
    }
}
