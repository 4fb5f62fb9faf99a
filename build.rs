//! Builds the built-in plugins (`plugins/`, a separate cargo workspace) for wasm32-wasip2, puts
//! the components in `OUT_DIR/plugins/`, and writes `OUT_DIR/builtins.rs`, the table
//! `src/plugin/builtin.rs` embeds them with: [`PLUGINS`] is the one list of built-ins.
//!
//! Needs the target once per toolchain: `rustup target add wasm32-wasip2`. To embed components
//! built elsewhere instead, set `OPSYNC_PLUGINS_DIR` to a directory holding `<name>.wasm` files.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The built-in plugins: (cargo package in `plugins/`, embedded name). The only list of them.
const PLUGINS: &[(&str, &str)] = &[
    ("opsync-plugin-file", "file"),
    ("opsync-plugin-webhook", "webhook"),
    ("opsync-plugin-vault-kv", "vault-kv"),
    ("opsync-plugin-aws-secrets-manager", "aws-secrets-manager"),
    ("opsync-plugin-password", "password"),
    ("opsync-plugin-openbao-userpass", "openbao-userpass"),
    ("opsync-plugin-aws-iam-access-key", "aws-iam-access-key"),
    ("opsync-plugin-kubernetes-secret", "kubernetes-secret"),
    ("opsync-plugin-github-actions", "github-actions"),
    ("opsync-plugin-gitlab-ci", "gitlab-ci"),
    // Audit sinks (the audit-sink world).
    ("opsync-plugin-syslog", "syslog"),
    ("opsync-plugin-splunk-hec", "splunk-hec"),
    ("opsync-plugin-elasticsearch", "elasticsearch"),
    ("opsync-plugin-webhook-audit", "webhook-audit"),
];

const TARGET: &str = "wasm32-wasip2";

/// `opsync version`'s stamps: the commit the build came from and when it was built (empty when
/// the build cannot tell). Named outside `OPSYNC_`: cargo sets `rustc-env` variables in the
/// environment of test binaries too, and opsync reads every `OPSYNC_*` variable as config.
fn stamp(manifest_dir: &Path) {
    let output = |program: &str, args: &[&str]| -> String {
        Command::new(program)
            .args(args)
            .current_dir(manifest_dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let commit = output("git", &["rev-parse", "--short=12", "HEAD"]);
    // SOURCE_DATE_EPOCH makes the date reproducible (reproducible-builds.org convention).
    let date = match env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => output(
            "date",
            &["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"],
        ),
        Err(_) => output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
    };
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=BUILD_DATE={date}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A new commit re-stamps the build: HEAD, and the branch it points at (a loose ref, or the
    // packed ones). Only files that exist: cargo reruns a script every time for a missing one.
    let git_dir = manifest_dir.join(".git");
    let Ok(head) = fs::read_to_string(git_dir.join("HEAD")) else {
        return;
    };
    let branch = head.trim().strip_prefix("ref: ").map(|b| git_dir.join(b));
    for path in [
        Some(git_dir.join("HEAD")),
        branch,
        Some(git_dir.join("packed-refs")),
    ]
    .into_iter()
    .flatten()
    .filter(|p| p.is_file())
    {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("plugins");
    fs::create_dir_all(&out_dir).expect("create OUT_DIR/plugins");
    write_table(&out_dir);
    stamp(&manifest_dir);
    println!("cargo:rerun-if-env-changed=OPSYNC_PLUGINS_DIR");

    if let Some(prebuilt) = env::var_os("OPSYNC_PLUGINS_DIR") {
        let prebuilt = PathBuf::from(prebuilt);
        for (_, name) in PLUGINS {
            let from = prebuilt.join(format!("{name}.wasm"));
            println!("cargo:rerun-if-changed={}", from.display());
            copy(&from, &out_dir.join(format!("{name}.wasm")));
        }
        return;
    }

    let plugins_dir = manifest_dir.join("plugins");
    for entry in ["Cargo.toml", "Cargo.lock", "../wit"] {
        println!(
            "cargo:rerun-if-changed={}",
            plugins_dir.join(entry).display()
        );
    }
    // Every crate of the workspace (plugins and the libraries they share); not a stray `target/`.
    for entry in fs::read_dir(&plugins_dir).expect("list plugins/").flatten() {
        let path = entry.path();
        if path.is_dir() && path.join("Cargo.toml").exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    // Outside `plugins/`, so the build's own output never re-triggers this script. Always under
    // this checkout (not a shared CARGO_TARGET_DIR): cargo would otherwise hand one checkout the
    // components another checkout uplifted to the same file names.
    let target_dir = manifest_dir.join("target").join("wasm-plugins");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--locked")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(plugins_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (package, _) in PLUGINS {
        cmd.arg("--package").arg(package);
    }
    // The outer build's flags and wrappers (clippy, coverage, host RUSTFLAGS) are not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo for plugins/: {e}"));
    if !status.success() {
        panic!(
            "building the built-in plugins failed ({status}). They need the {TARGET} target: \
             `rustup target add {TARGET}`. Or set OPSYNC_PLUGINS_DIR to prebuilt components."
        );
    }
    let built = target_dir.join(TARGET).join("release");
    for (package, name) in PLUGINS {
        let file = format!("{}.wasm", package.replace('-', "_"));
        copy(&built.join(file), &out_dir.join(format!("{name}.wasm")));
    }
}

/// `OUT_DIR/builtins.rs`: one `Builtin` per entry of [`PLUGINS`], embedding its component.
fn write_table(plugins_out: &Path) {
    let mut table = String::from(
        "/// Every built-in plugin, in build.rs's order.\npub const BUILTINS: &[Builtin] = &[\n",
    );
    for (_, name) in PLUGINS {
        let wasm = plugins_out.join(format!("{name}.wasm"));
        table.push_str(&format!(
            "    Builtin {{ name: {name:?}, wasm: include_bytes!({:?}) }},\n",
            wasm.display().to_string()
        ));
    }
    table.push_str("];\n");
    let out = plugins_out.parent().expect("OUT_DIR").join("builtins.rs");
    fs::write(&out, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}
