//! `[plugins.NAME]`, `[[route]]` and `[sync]` in config files: defaults, and errors that name
//! the file, the route by index and the key.

use std::path::Path;
use std::time::Duration;

use opsync::config::{LoadOptions, Settings, SourceSetting};
use opsync::route::{FieldSelection, OnDelete};

const CONNECT: &str = "[connect]\nhost = \"http://127.0.0.1:8080\"\ntoken = \"t\"\n";

fn load(dir: &Path, body: &str) -> Result<Settings, String> {
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("{CONNECT}{body}")).expect("write config");
    let opts = LoadOptions {
        config_file: Some(path),
        env: opsync::config::EnvVars::default(),
        overrides: opsync::config::Overrides::default(),
    };
    Settings::load(&opts).map_err(|e| e.to_string())
}

#[test]
fn routes_and_plugins_load_with_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = load(
        dir.path(),
        r#"
[sync]
poll_interval = "2s"

[plugins.files]
builtin = "file"
world = "destination"
config = { format = "dotenv" }
grants = { dirs = [{ host = "out" }], http = ["https://api.example.com"] }
limits = { wall_clock = "5s" }

[[route]]
name = "prod"
vaults = ["Production"]
tags = ["web"]
title = "Admin *"
categories = ["LOGIN"]
destinations = ["files"]
name_template = "{vault}-{title}"
fields = ["username", "password"]
on_delete = "delete"
concurrency = 8
max_delete_ratio = 0.5

[[route]]
name = "all"
destinations = ["files"]
"#,
    )
    .expect("loads");
    assert_eq!(s.sync.poll_interval, Duration::from_secs(2));
    let files = s.plugin("files").expect("plugin");
    assert_eq!(
        files.source,
        SourceSetting::Builtin {
            builtin: "file".into()
        }
    );
    assert_eq!(files.grants.dirs[0].host, dir.path().join("out"));
    assert_eq!(files.grants.dirs[0].guest, "/");
    assert!(
        files.grants.dirs[0].flush,
        "writable grants are flushed unless told otherwise"
    );
    assert_eq!(files.limits().wall_clock, Duration::from_secs(5));
    assert_eq!(files.grants().http.allowed.len(), 1);
    let [prod, all] = s.routes.as_slice() else {
        panic!("two routes")
    };
    assert_eq!(prod.on_delete, OnDelete::Delete);
    assert_eq!(prod.concurrency, 8);
    assert_eq!(prod.max_delete_ratio, 0.5);
    assert_eq!(
        prod.fields,
        FieldSelection::Only(vec!["username".into(), "password".into()])
    );
    assert_eq!(prod.name_template.as_str(), "{vault}-{title}");
    assert_eq!(
        prod.selector.title.as_ref().map(|g| g.as_str()),
        Some("Admin *")
    );
    assert_eq!(
        all.on_delete,
        OnDelete::Retain,
        "deleting is never the default"
    );
    assert_eq!(all.max_delete_ratio, 0.2);
    assert_eq!(all.fields, FieldSelection::All);
    assert_eq!(all.name_template.as_str(), "{vault}/{title}");
    // The effective config renders, plugins by name and routes as an array of tables.
    let toml = s.to_redacted_toml();
    assert!(toml.contains("[plugins.files]"), "{toml}");
    assert!(toml.contains("[[route]]"), "{toml}");
}

#[test]
fn a_dir_grant_can_opt_out_of_the_flush_and_read_only_ones_are_never_flushed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = load(
        dir.path(),
        r#"
[plugins.files]
builtin = "file"
grants = { dirs = [{ host = "tmp", flush = false }, { host = "in", guest = "/in", read_only = true }] }
"#,
    )
    .expect("loads");
    let grants = s.plugin("files").expect("plugin").grants();
    assert!(!grants.dirs[0].flush, "flush = false is kept");
    assert!(
        !grants.dirs[1].flush,
        "a read-only directory has nothing to flush"
    );
}

#[test]
fn errors_name_the_file_the_route_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.toml");
    let plugin = "[plugins.file]\nbuiltin = \"file\"\n";
    let cases = [
        (
            "[[route]]\nname = \"a\"\ndestinations = [\"file\"]\n[[route]]\nname = \"b\"\ndestinations = [\"fiel\"]\n",
            "route[1].destinations: unknown plugin \"fiel\" (configured: file)",
        ),
        (
            "[[route]]\ndestinations = [\"file\"]\n",
            "route[0].name: every route needs a name",
        ),
        (
            "[[route]]\nname = \"a\"\ndestinations = [\"file\"]\nname_template = \"{secret}\"\n",
            "route[0].name_template: unknown placeholder {secret}",
        ),
        (
            "[[route]]\nname = \"a\"\ndestinations = [\"file\"]\nmax_delete_ratio = 1.5\n",
            "route[0].max_delete_ratio: must be between 0 and 1",
        ),
        (
            "[[route]]\nname = \"a\"\ndestinations = [\"file\"]\nconcurrency = 0\n",
            "route[0].concurrency: must be between 1 and 256",
        ),
        (
            "[[route]]\nname = \"a\"\ndestinations = [\"file\"]\n[[route]]\nname = \"a\"\ndestinations = [\"file\"]\n",
            "route[1].name: another route is already named \"a\"",
        ),
    ];
    for (body, want) in cases {
        let err = load(dir.path(), &format!("{plugin}{body}")).expect_err(body);
        let want = format!("{}: {want}", file.display());
        assert!(err.contains(&want), "{err}\n  does not contain\n{want}");
    }
    // Unknown keys inside a route are refused, like everywhere else.
    let err = load(
        dir.path(),
        &format!("{plugin}[[route]]\nname = \"a\"\ndestinations = [\"file\"]\nvault = \"x\"\n"),
    )
    .expect_err("unknown key");
    assert!(
        err.contains("unknown key") && err.contains("vault"),
        "{err}"
    );
    // Plugin instances are checked too.
    let err = load(dir.path(), "[plugins.x]\nbuiltin = \"nope\"\n").expect_err("builtin");
    assert!(
        err.contains("plugins.x.builtin: unknown built-in plugin \"nope\""),
        "{err}"
    );
    let err = load(dir.path(), "[plugins.x]\npath = \"p.wasm\"\n").expect_err("sha");
    assert!(
        err.contains("plugins.x.sha256: a plugin loaded by path needs its sha256 pinned"),
        "{err}"
    );
    let err = load(dir.path(), "[sync]\npoll_interval = \"0s\"\n").expect_err("zero");
    assert!(
        err.contains("sync.poll_interval: must be more than zero"),
        "{err}"
    );
}
