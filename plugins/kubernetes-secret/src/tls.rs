//! Where a tls Secret's certificate and key come from: a field, one of the item's files, or by
//! default the `certificate` and `private key` fields, else the PEM blocks of the item's files
//! (a Document item holding `tls.crt` and `tls.key`, or one combined PEM bundle).

use opsync_destination_kit::settings::plain;
use opsync_destination_kit::{ItemEvent, ItemFile, PluginError, misconfigured, permanent};
use pem::{EncodeConfig, LineEnding, Pem};

use crate::describe;
use crate::render::{TLS_CERT_KEY, TLS_KEY_KEY, Values};
use crate::settings::field_value;

/// Where one half of a tls Secret comes from.
pub(crate) enum Source {
    /// The field named by `cert-field` / `key-field`: its whole value, which must hold PEM.
    Field(String),
    /// The item's file named by `cert-file` / `key-file`: its blocks of the wanted kind.
    File(String),
    /// Neither key set: this field when the item has it, else the blocks of the wanted kind in
    /// all the item's files.
    Default(&'static str),
}

/// The two halves, and the config keys that choose each.
#[derive(Clone, Copy)]
pub(crate) enum Part {
    Certificate,
    Key,
}

/// What names one half: the config keys that choose it, its default field, and its PEM block
/// as messages describe it.
struct Names {
    field_key: &'static str,
    file_key: &'static str,
    default_field: &'static str,
    what: &'static str,
    marker: &'static str,
}

const CERTIFICATE: Names = Names {
    field_key: "cert-field",
    file_key: "cert-file",
    default_field: "certificate",
    what: "PEM certificate",
    marker: "`-----BEGIN CERTIFICATE-----`",
};

const KEY: Names = Names {
    field_key: "key-field",
    file_key: "key-file",
    default_field: "private key",
    what: "PEM private key",
    marker: "`-----BEGIN ... PRIVATE KEY-----`",
};

impl Part {
    fn names(self) -> &'static Names {
        match self {
            Self::Certificate => &CERTIFICATE,
            Self::Key => &KEY,
        }
    }

    fn field_key(self) -> &'static str {
        self.names().field_key
    }

    fn file_key(self) -> &'static str {
        self.names().file_key
    }

    fn default_field(self) -> &'static str {
        self.names().default_field
    }

    fn what(self) -> &'static str {
        self.names().what
    }

    fn marker(self) -> &'static str {
        self.names().marker
    }

    /// Whether a PEM block's label is of this part.
    fn takes(self, label: &str) -> bool {
        match self {
            Self::Certificate => label == "CERTIFICATE",
            Self::Key => label.ends_with("PRIVATE KEY"),
        }
    }
}

/// The source of `part` from the config: its field key or its file key (not both), else the
/// default.
pub(crate) fn source(part: Part) -> Result<Source, PluginError> {
    match (plain(part.field_key())?, plain(part.file_key())?) {
        (Some(_), Some(_)) => Err(misconfigured(format!(
            "set `{}` or `{}`, not both",
            part.field_key(),
            part.file_key()
        ))),
        (Some(field), None) => Ok(Source::Field(field)),
        (None, Some(file)) => Ok(Source::File(file)),
        (None, None) => Ok(Source::Default(part.default_field())),
    }
}

/// The values of a tls Secret for `event`'s item. Values are revealed here: keep them out of
/// logs and messages.
pub(crate) fn values(
    event: &ItemEvent,
    cert: &Source,
    key: &Source,
) -> Result<Values, PluginError> {
    Ok(Values::from([
        (
            TLS_CERT_KEY.to_string(),
            text(event, cert, Part::Certificate)?,
        ),
        (TLS_KEY_KEY.to_string(), text(event, key, Part::Key)?),
    ]))
}

/// The PEM text of `part` from `source`.
fn text(event: &ItemEvent, source: &Source, part: Part) -> Result<String, PluginError> {
    let item = describe(event);
    match source {
        Source::Field(field) => from_field(event, field, part),
        Source::Default(field) if has_field(event, field) => from_field(event, field, part),
        Source::File(name) => {
            let Some(file) = event.item.files.iter().find(|f| f.name == *name) else {
                return Err(permanent(format!(
                    "{item} has no file `{name}`; set `{}` to the file to use",
                    part.file_key()
                )));
            };
            let blocks = blocks(&item, file, &content(&item, file)?, part)?;
            one_part(&item, &format!("the file `{name}`"), blocks, part)
        }
        Source::Default(field) => {
            if event.item.files.is_empty() {
                return Err(permanent(format!(
                    "{item} has no field `{field}` and no files; set `{}` or `{}`",
                    part.field_key(),
                    part.file_key()
                )));
            }
            let mut found = Vec::new();
            for file in &event.item.files {
                // Binary files (DER, PKCS#12) hold no PEM: only a named one is an error.
                if !file.base64 {
                    found.extend(blocks(&item, file, &content(&item, file)?, part)?);
                }
            }
            one_part(&item, "its files", found, part)
        }
    }
}

fn has_field(event: &ItemEvent, wanted: &str) -> bool {
    opsync_destination_kit::select::find(event, wanted).is_ok()
}

/// A field's whole value, which must hold a block of `part` (checked without parsing: what the
/// field holds is written as it is).
fn from_field(event: &ItemEvent, field: &str, part: Part) -> Result<String, PluginError> {
    let value = field_value(event, part.field_key(), field)?;
    let holds = match part {
        Part::Certificate => value.contains("-----BEGIN CERTIFICATE-----"),
        Part::Key => value.contains("-----BEGIN ") && value.contains("PRIVATE KEY-----"),
    };
    if !holds {
        return Err(permanent(format!(
            "{}: the field `{field}` holds no {} ({}); set `{}` to the field that does",
            describe(event),
            part.what(),
            part.marker(),
            part.field_key()
        )));
    }
    Ok(value)
}

/// A file's text: its content must have been sent (the route's `files = true`) and be text.
fn content(item: &str, file: &ItemFile) -> Result<String, PluginError> {
    let Some(content) = &file.content else {
        return Err(permanent(format!(
            "{item}: the content of its file `{}` was not sent; set `files = true` on the route",
            file.name
        )));
    };
    if file.base64 {
        return Err(permanent(format!(
            "{item}: the file `{}` is binary, not PEM text; store the certificate and key as PEM",
            file.name
        )));
    }
    Ok(content.reveal())
}

/// The blocks of `part` in a file's text.
fn blocks(item: &str, file: &ItemFile, text: &str, part: Part) -> Result<Vec<Pem>, PluginError> {
    pem_blocks(text, part).map_err(|()| {
        // The parser's own message can quote a byte of the block: it is not passed on.
        permanent(format!(
            "{item}: the file `{}` holds a PEM block that does not decode",
            file.name
        ))
    })
}

/// The blocks of `part` in `text`, in order; any other text or block is passed over.
fn pem_blocks(text: &str, part: Part) -> Result<Vec<Pem>, ()> {
    let all = pem::parse_many(text).map_err(|_| ())?;
    Ok(all.into_iter().filter(|b| part.takes(b.tag())).collect())
}

/// The PEM text of the blocks found for `part` in `place`: a certificate chain (one or more
/// certificates, in order), or exactly one unencrypted private key.
fn one_part(item: &str, place: &str, blocks: Vec<Pem>, part: Part) -> Result<String, PluginError> {
    check_blocks(&blocks, part).map_err(|problem| {
        permanent(format!(
            "{item}: found {problem} in {place}; set `{}` to the file that holds it",
            part.file_key()
        ))
    })?;
    Ok(encode(&blocks))
}

/// The blocks as PEM text, one after the other (LF line ends, no blank line between).
fn encode(blocks: &[Pem]) -> String {
    let config = EncodeConfig::new().set_line_ending(LineEnding::LF);
    blocks
        .iter()
        .map(|block| pem::encode_config(block, config))
        .collect()
}

/// What is wrong with `blocks` as `part`, if anything.
fn check_blocks(blocks: &[Pem], part: Part) -> Result<(), String> {
    match (part, blocks) {
        (_, []) => Err(format!("no {} ({})", part.what(), part.marker())),
        (Part::Key, [key]) if key.tag() == "ENCRYPTED PRIVATE KEY" => {
            Err("an encrypted private key, which Kubernetes cannot use".into())
        }
        (Part::Key, [_, _, ..]) => Err(format!(
            "{} private keys where a tls Secret takes one",
            blocks.len()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEA\n-----END CERTIFICATE-----\n";
    const CA: &str = "-----BEGIN CERTIFICATE-----\nQ0FDQUNB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQ==\n-----END PRIVATE KEY-----\n";

    fn pem_text(text: &str, part: Part) -> Result<String, String> {
        let blocks = pem_blocks(text, part).map_err(|()| "undecodable".to_string())?;
        check_blocks(&blocks, part)?;
        Ok(encode(&blocks))
    }

    #[test]
    fn a_combined_bundle_splits_into_the_chain_and_the_key() {
        let bundle = format!("subject=CN=www.example.com\n{CERT}{KEY}\n{CA}");
        assert_eq!(
            pem_text(&bundle, Part::Certificate).expect("chain"),
            format!("{CERT}{CA}")
        );
        assert_eq!(pem_text(&bundle, Part::Key).expect("key"), KEY);
    }

    #[test]
    fn keys_of_every_pem_kind_are_taken() {
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nMC4CAQAwBQ==\n-----END RSA PRIVATE KEY-----\n";
        let ec = "-----BEGIN EC PRIVATE KEY-----\nMC4CAQAwBQ==\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(pem_text(rsa, Part::Key).expect("rsa"), rsa);
        assert_eq!(pem_text(ec, Part::Key).expect("ec"), ec);
    }

    #[test]
    fn missing_ambiguous_encrypted_or_broken_blocks_are_refused() {
        assert!(
            pem_text(KEY, Part::Certificate)
                .expect_err("no cert")
                .contains("no PEM certificate")
        );
        assert!(
            pem_text("plain text", Part::Key)
                .expect_err("no key")
                .contains("no PEM private key")
        );
        assert!(
            pem_text(&format!("{KEY}{KEY}"), Part::Key)
                .expect_err("two keys")
                .contains("2 private keys")
        );
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMC4CAQAwBQ==\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(
            pem_text(encrypted, Part::Key)
                .expect_err("encrypted")
                .contains("encrypted")
        );
        let broken = "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_text(broken, Part::Certificate).expect_err("broken"),
            "undecodable"
        );
    }
}
