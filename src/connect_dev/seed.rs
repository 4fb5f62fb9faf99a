//! Seed data: the `demo` vaults and items (every value obviously fake), and the `bulk:VxN` generator for benchmarks.

use serde_json::{Value, json};

use crate::connect::model::{Item, VaultType};

use super::items::prepare;
use super::store::{NewFile, Store};

/// The demo item whose title has the shape of an item id (SDKs must find it by title).
pub const ID_LIKE_TITLE: &str = "looksliketheidofanitem2345";
/// The OTP secret of the demo's `Admin Console` login (the RFC 6238 example key, not a real one).
pub const DEMO_OTP: &str =
    "otpauth://totp/Example:admin@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";

/// Why seeding failed (a bug in the seed data, never user input).
#[derive(Debug, thiserror::Error)]
#[error("seed item '{title}': {reason}")]
pub struct SeedError {
    title: String,
    reason: String,
}

struct Seeder<'a> {
    store: &'a mut Store,
    editor: String,
}

impl Seeder<'_> {
    fn item(&mut self, vault: &str, body: Value, files: Vec<NewFile>) -> Result<(), SeedError> {
        let title = body["title"].as_str().unwrap_or_default().to_owned();
        let fail = |reason: String| SeedError {
            title: title.clone(),
            reason,
        };
        let item: Item = serde_json::from_value(body).map_err(|e| fail(e.to_string()))?;
        let item = prepare(item, None, None).map_err(|e| fail(e.message().to_owned()))?;
        self.store
            .create_item(vault, item, files, &self.editor)
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
}

/// The demo's web certificate and key: PEM framing around text that says they are fake, so a
/// `kubernetes.io/tls` Secret can be made from the Document item's files.
const DEMO_CERT: &str = "-----BEGIN CERTIFICATE-----\nb3BzeW5jIGRlbW86IGEgZmFrZSBjZXJ0aWZpY2F0ZSBmb3Igd3d3LmV4YW1wbGUu\nY29tLCBub3QgYSByZWFsIG9uZQ==\n-----END CERTIFICATE-----\n";
const DEMO_KEY: &str = "-----BEGIN PRIVATE KEY-----\nb3BzeW5jIGRlbW86IGEgZmFrZSBwcml2YXRlIGtleSBmb3Igd3d3LmV4YW1wbGUu\nY29tLCBub3QgYSByZWFsIG9uZQ==\n-----END PRIVATE KEY-----\n";

fn file(name: &str, content: &str) -> NewFile {
    NewFile {
        name: name.to_owned(),
        section: None,
        content: content.as_bytes().to_vec(),
    }
}

/// Three vaults (Production, Staging, Shared) with LOGIN, PASSWORD, API_CREDENTIAL, DATABASE,
/// SERVER, SSH_KEY and SECURE_NOTE items: sections, tags, URLs, an OTP field and attachments.
pub fn demo(store: &mut Store) -> Result<(), SeedError> {
    let editor = store.key.server_user.clone();
    let prod = store.add_vault(
        "Production",
        "Production credentials (demo data, fake values)",
        VaultType::UserCreated,
    );
    let staging = store.add_vault(
        "Staging",
        "Staging credentials (demo data, fake values)",
        VaultType::UserCreated,
    );
    let shared = store.add_vault("Shared", "Shared with the whole team", VaultType::Everyone);
    let mut s = Seeder { store, editor };

    s.item(
        &prod,
        json!({
            "title": "Admin Console", "category": "LOGIN", "tags": ["production", "web"],
            "urls": [{"label": "website", "primary": true, "href": "https://admin.example.com"}],
            "sections": [{"id": "Section_2fa", "label": "Two-factor authentication"}],
            "fields": [
                {"purpose": "USERNAME", "type": "STRING", "value": "admin@example.com"},
                {"purpose": "PASSWORD", "type": "CONCEALED", "value": "demo-admin-password-not-real"},
                {"purpose": "NOTES", "type": "STRING", "value": "Demo login with a one-time password."},
                {"type": "OTP", "label": "one-time password", "section": {"id": "Section_2fa"},
                 "value": DEMO_OTP}
            ]
        }),
        Vec::new(),
    )?;
    s.item(
        &prod,
        json!({
            "title": "Orders database", "category": "DATABASE", "tags": ["production", "database"],
            "sections": [{"id": "Section_replica", "label": "Read replica"}],
            "fields": [
                {"id": "database_type", "type": "MENU", "label": "type", "value": "postgresql"},
                {"id": "hostname", "type": "STRING", "label": "server", "value": "db.prod.example.internal"},
                {"id": "port", "type": "STRING", "label": "port", "value": "5432"},
                {"id": "database", "type": "STRING", "label": "database", "value": "orders"},
                {"purpose": "USERNAME", "type": "STRING", "value": "orders_app"},
                {"purpose": "PASSWORD", "type": "CONCEALED", "value": "demo-db-password-not-real",
                 "recipe": {"length": 32, "characterSets": ["LETTERS", "DIGITS"]}},
                {"type": "STRING", "label": "replica host", "section": {"id": "Section_replica"},
                 "value": "db-replica.prod.example.internal"}
            ]
        }),
        vec![file("ca.pem", "FAKE CERTIFICATE AUTHORITY FOR THE OPSYNC DEMO\n")],
    )?;
    s.item(
        &prod,
        json!({
            "title": "Payments API", "category": "API_CREDENTIAL", "tags": ["production", "payments"],
            "urls": [{"primary": true, "href": "https://payments.example.com/dashboard"}],
            "sections": [{"id": "Section_limits", "label": "Limits"}],
            "fields": [
                {"id": "username", "type": "STRING", "purpose": "USERNAME", "value": "acct_demo"},
                {"id": "credential", "type": "CONCEALED", "label": "credential",
                 "value": "sk_demo_opsync_not_a_real_key_000000"},
                {"id": "type", "type": "MENU", "label": "type", "value": "secret key"},
                {"id": "hostname", "type": "STRING", "label": "hostname", "value": "api.payments.example.com"},
                {"id": "validFrom", "type": "DATE", "label": "valid from", "value": "2024-01-01"},
                {"id": "expires", "type": "MONTH_YEAR", "label": "expires", "value": "203012"},
                {"type": "STRING", "label": "requests per second", "section": {"id": "Section_limits"},
                 "value": "100"}
            ]
        }),
        Vec::new(),
    )?;
    s.item(
        &prod,
        json!({
            "title": "Bastion host", "category": "SERVER", "tags": ["production", "ssh"],
            "urls": [{"primary": true, "href": "ssh://bastion.example.internal"}],
            "sections": [{"id": "admin_console", "label": "Admin Console"},
                         {"id": "hosting_provider_details", "label": "Hosting Provider"}],
            "fields": [
                {"id": "url", "type": "STRING", "label": "URL", "value": "bastion.example.internal"},
                {"purpose": "USERNAME", "type": "STRING", "value": "ops"},
                {"purpose": "PASSWORD", "type": "CONCEALED", "value": "demo-bastion-password-not-real"},
                {"type": "URL", "label": "admin console URL", "section": {"id": "admin_console"},
                 "value": "https://console.example.internal"},
                {"type": "STRING", "label": "name", "section": {"id": "hosting_provider_details"},
                 "value": "Example Cloud"}
            ]
        }),
        vec![file(
            "known_hosts",
            "bastion.example.internal ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsyncDemoFakeHostKey0000000000000000\n",
        )],
    )?;
    s.item(
        &prod,
        json!({
            "title": "Deploy key", "category": "SSH_KEY", "tags": ["production", "ssh"],
            "fields": [
                {"id": "private_key", "type": "SSHKEY", "label": "private key",
                 "value": "opsync demo: a fake private key, not a real one"},
                {"id": "public_key", "type": "STRING", "label": "public key",
                 "value": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsyncDemoFakePublicKey00000000000000000 deploy@example.com"},
                {"id": "fingerprint", "type": "STRING", "label": "fingerprint",
                 "value": "SHA256:opsyncDemoFakeFingerprint000000000000000000"},
                {"id": "key_type", "type": "STRING", "label": "key type", "value": "ed25519"}
            ]
        }),
        vec![file(
            "id_ed25519.pub",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsyncDemoFakePublicKey00000000000000000 deploy@example.com\n",
        )],
    )?;
    s.item(
        &prod,
        json!({
            "title": "Web TLS certificate", "category": "SECURE_NOTE", "tags": ["production", "tls"],
            "fields": [{"purpose": "NOTES", "type": "STRING",
                        "value": "Certificate and key for www.example.com (fake demo files)."}]
        }),
        vec![
            file("tls.crt", DEMO_CERT),
            file("tls.key", DEMO_KEY),
        ],
    )?;

    s.item(
        &staging,
        json!({
            "title": "Admin Console", "category": "LOGIN", "tags": ["staging", "web"],
            "urls": [{"primary": true, "href": "https://admin.staging.example.com"}],
            "fields": [
                {"purpose": "USERNAME", "type": "STRING", "value": "admin@staging.example.com"},
                {"purpose": "PASSWORD", "type": "CONCEALED", "value": "demo-staging-admin-not-real"}
            ]
        }),
        Vec::new(),
    )?;
    s.item(
        &staging,
        json!({
            "title": "Orders database", "category": "DATABASE", "tags": ["staging", "database"],
            "fields": [
                {"id": "database_type", "type": "MENU", "label": "type", "value": "postgresql"},
                {"id": "hostname", "type": "STRING", "label": "server", "value": "db.staging.example.internal"},
                {"id": "port", "type": "STRING", "label": "port", "value": "5432"},
                {"id": "database", "type": "STRING", "label": "database", "value": "orders"},
                {"purpose": "USERNAME", "type": "STRING", "value": "orders_app"},
                {"purpose": "PASSWORD", "type": "CONCEALED", "value": "demo-staging-db-not-real"}
            ]
        }),
        Vec::new(),
    )?;
    s.item(
        &staging,
        json!({
            "title": "CI deploy token", "category": "PASSWORD", "tags": ["staging", "ci"],
            "fields": [
                {"purpose": "PASSWORD", "type": "CONCEALED", "value": "demo-ci-token-not-real"},
                {"purpose": "NOTES", "type": "STRING", "value": "Used by the staging deploy pipeline."}
            ]
        }),
        Vec::new(),
    )?;
    s.item(
        &staging,
        json!({
            "title": ID_LIKE_TITLE, "category": "PASSWORD", "tags": ["staging"],
            "fields": [{"purpose": "PASSWORD", "type": "CONCEALED", "value": "demo-id-like-not-real"}]
        }),
        Vec::new(),
    )?;

    s.item(
        &shared,
        json!({
            "title": "Monitoring API", "category": "API_CREDENTIAL", "tags": ["monitoring"],
            "urls": [{"primary": true, "href": "https://monitoring.example.com"}],
            "fields": [
                {"id": "credential", "type": "CONCEALED", "label": "credential",
                 "value": "demo-monitoring-key-not-real"}
            ]
        }),
        Vec::new(),
    )?;
    s.item(
        &shared,
        json!({
            "title": "Team mailbox", "category": "LOGIN", "tags": ["email"],
            "urls": [{"primary": true, "href": "https://mail.example.com"}],
            "fields": [
                {"purpose": "USERNAME", "type": "EMAIL", "value": "team@example.com"},
                {"purpose": "PASSWORD", "type": "CONCEALED", "value": "demo-mailbox-not-real"}
            ]
        }),
        Vec::new(),
    )?;
    s.item(
        &shared,
        json!({
            "title": "On-call runbook", "category": "SECURE_NOTE", "tags": ["oncall"],
            "fields": [{"purpose": "NOTES", "type": "STRING", "value": "See the attached runbook."}]
        }),
        vec![file(
            "runbook.md",
            "# On-call runbook\n\n1. Breathe.\n2. Check the dashboards.\n",
        )],
    )?;
    Ok(())
}

/// `vaults` vaults named `Bulk 01`... with `items` LOGIN items each (`Login 00001`...).
pub fn bulk(store: &mut Store, vaults: usize, items: usize) -> Result<(), SeedError> {
    let editor = store.key.server_user.clone();
    let width = vaults.to_string().len().max(2);
    let item_width = items.to_string().len().max(5);
    for v in 1..=vaults {
        let vault = store.add_vault(&format!("Bulk {v:0width$}"), "", VaultType::UserCreated);
        let mut s = Seeder {
            store,
            editor: editor.clone(),
        };
        for i in 1..=items {
            s.item(
                &vault,
                json!({
                    "title": format!("Login {i:0item_width$}"), "category": "LOGIN", "tags": ["bulk"],
                    "urls": [{"primary": true, "href": format!("https://app{i}.example.test")}],
                    "fields": [
                        {"purpose": "USERNAME", "type": "STRING", "value": format!("user{v}-{i}")},
                        {"purpose": "PASSWORD", "type": "CONCEALED",
                         "value": format!("bulk-password-{v}-{i}-not-real")}
                    ]
                }),
                Vec::new(),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::model::Category;
    use crate::connect_dev::auth::KeyMaterial;

    #[test]
    fn demo_has_what_the_issue_promises() {
        let mut store = Store::new(KeyMaterial::generate().expect("key"));
        demo(&mut store).expect("seeds");
        let names: Vec<&str> = store.vaults().map(|v| v.vault.name.as_str()).collect();
        assert_eq!(names, ["Production", "Staging", "Shared"]);
        let items: Vec<_> = store.vaults().flat_map(|v| v.items.values()).collect();
        for category in [
            Category::Login,
            Category::Password,
            Category::ApiCredential,
            Category::Database,
            Category::Server,
            Category::SshKey,
        ] {
            assert!(
                items.iter().any(|i| i.item.category == category),
                "{category}"
            );
        }
        assert!(items.iter().any(|i| !i.files().is_empty()));
        assert!(items.iter().any(|i| i.item.title == ID_LIKE_TITLE));
        let otp = items
            .iter()
            .find(|i| i.item.title == "Admin Console" && i.item.tags.contains(&"production".into()))
            .expect("admin console");
        let full = otp.full();
        let code = full.field("one-time password").and_then(|f| f.totp.clone());
        assert_eq!(code.map(|c| c.expose().len()), Some(6));
    }

    #[test]
    fn bulk_sizes() {
        let mut store = Store::new(KeyMaterial::generate().expect("key"));
        bulk(&mut store, 3, 20).expect("seeds");
        assert_eq!(store.vaults().count(), 3);
        assert!(
            store
                .vaults()
                .all(|v| v.items.len() == 20 && v.vault.items == 20)
        );
    }
}
