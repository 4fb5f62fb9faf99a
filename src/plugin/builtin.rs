//! The built-in plugins: components built from `plugins/` by `build.rs` and embedded in the binary.
//! They run through the very same sandbox as any other plugin.

/// One embedded plugin.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub wasm: &'static [u8],
}

// `BUILTINS`, written by build.rs from its list of built-in plugins.
include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

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
