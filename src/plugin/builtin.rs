//! The built-in plugins: components built from `plugins/` by `build.rs` and embedded in the binary.
//! They run through the very same sandbox as any other plugin.

/// One embedded plugin.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub wasm: &'static [u8],
}

/// The embedded component that build.rs put in `OUT_DIR/plugins/<name>.wasm`.
macro_rules! embedded {
    ($name:literal) => {
        Builtin {
            name: $name,
            wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/", $name, ".wasm")),
        }
    };
}

/// Every built-in plugin (the list in build.rs says which cargo package each is built from).
pub const BUILTINS: &[Builtin] = &[
    embedded!("file"),
    embedded!("webhook"),
    embedded!("vault-kv"),
    embedded!("aws-secrets-manager"),
    embedded!("password"),
    embedded!("openbao-userpass"),
    embedded!("aws-iam-access-key"),
    embedded!("syslog"),
    embedded!("splunk-hec"),
    embedded!("elasticsearch"),
    embedded!("webhook-audit"),
];

/// The built-in plugin called `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The names of all built-ins, for messages.
pub fn names() -> String {
    BUILTINS
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_a_component() {
        for b in BUILTINS {
            // Component binaries carry layer 1 in the version field: `\0asm 0d 00 01 00`.
            assert_eq!(&b.wasm[..8], b"\0asm\x0d\x00\x01\x00", "{}", b.name);
        }
        assert!(builtin("file").is_some());
        assert!(builtin("aws-secrets-manager").is_some());
        assert!(builtin("openbao-userpass").is_some());
        assert!(builtin("aws-iam-access-key").is_some());
        assert!(builtin("nope").is_none());
    }
}
