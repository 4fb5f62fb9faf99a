//! `[audit]` and `[[audit.sink]]` in config files: defaults, and errors that name the file, the
//! sink by index and the key.

use std::path::Path;
use std::time::Duration;

use opsync::config::{LoadOptions, Settings, StartSetting};

const CONNECT: &str = "[connect]\nhost = \"http://127.0.0.1:8080\"\ntoken = \"t\"\n";

const SINKS: &str = r#"
[plugins.es]
builtin = "elasticsearch"
world = "audit-sink"
config = { url = "https://es.example:9200" }
grants = { http = ["https://es.example:9200"] }

[plugins.files]
builtin = "file"
world = "destination"
"#;

fn load(dir: &Path, body: &str) -> Result<Settings, String> {
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("{CONNECT}{SINKS}{body}")).expect("write config");
    let opts = LoadOptions {
        config_file: Some(path),
        env: opsync::config::EnvVars::default(),
        overrides: opsync::config::Overrides::default(),
    };
    Settings::load(&opts).map_err(|e| e.to_string())
}

#[test]
fn sinks_load_with_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = load(dir.path(), "").expect("no [audit] at all");
    assert!(!s.audit.enabled());

    let s = load(
        dir.path(),
        r#"
[audit]
poll_interval = "2s"

[[audit.sink]]
plugin = "es"
format = "ocsf"

[[audit.sink]]
plugin = "es"
name = "es-recent"
batch_size = 50
in_flight = 4
flush_interval = "250ms"
start = "now"
include_own_events = false
"#,
    )
    .expect("loads");
    assert!(s.audit.enabled());
    assert_eq!(s.audit.poll_interval, Duration::from_secs(2));
    assert_eq!(s.audit.page_size, 500);
    let [a, b] = &s.audit.sinks[..] else {
        panic!("two sinks: {:?}", s.audit.sinks)
    };
    assert_eq!(
        (a.name.as_str(), a.format.as_deref(), a.batch_size),
        ("es", Some("ocsf"), 500)
    );
    assert_eq!(a.flush_interval, Duration::from_secs(1));
    assert_eq!(a.start, StartSetting::Beginning);
    assert!(a.include_own_events);
    assert_eq!((b.name.as_str(), b.batch_size), ("es-recent", 50));
    assert_eq!(
        (a.in_flight, b.in_flight),
        (1, 4),
        "one batch at a time unless set"
    );
    assert_eq!(b.start, StartSetting::Now);
    assert!(!b.include_own_events);
    // The effective config shows the section.
    let shown = s.to_redacted_toml();
    assert!(shown.contains("[[audit.sink]]"), "{shown}");
}

#[test]
fn errors_name_the_file_the_sink_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[[audit.sink]]\nplugin = \"nope\"\n",
            "audit.sink[0].plugin: unknown plugin \"nope\" (configured: es, files)",
        ),
        (
            "[[audit.sink]]\nplugin = \"files\"\n",
            "audit.sink[0].plugin: plugin \"files\" is a destination plugin, not an audit-sink",
        ),
        (
            "[[audit.sink]]\nplugin = \"es\"\nformat = \"cef\"\n",
            "audit.sink[0].format: unknown format \"cef\" (expected one of raw, ocsf, ecs)",
        ),
        (
            "[[audit.sink]]\nplugin = \"es\"\nbatch_size = 0\n",
            "audit.sink[0].batch_size: must be between 1 and 10000, got 0",
        ),
        (
            "[[audit.sink]]\nplugin = \"es\"\nin_flight = 17\n",
            "audit.sink[0].in_flight: must be between 1 and 16, got 17",
        ),
        (
            "[[audit.sink]]\nplugin = \"es\"\n[[audit.sink]]\nplugin = \"es\"\n",
            "audit.sink[1].name: another sink is already named \"es\"",
        ),
        (
            "[[audit.sink]]\nplugin = \"es\"\nflush_interval = \"0s\"\n",
            "audit.sink[0].flush_interval: must be more than zero",
        ),
        (
            "[audit]\npage_size = 0\n",
            "audit.page_size: must be between 1 and 10000, got 0",
        ),
        (
            "[[audit.sink]]\nplugin = \"es\"\nstart = \"yesterday\"\n",
            "audit.sink.0.start: unknown value \"yesterday\" (expected one of beginning, now)",
        ),
        ("[audit]\npoll = \"1s\"\n", "unknown key audit.poll"),
    ];
    for (body, expected) in cases {
        let err = load(dir.path(), body).expect_err(body);
        assert!(err.contains(expected), "{body}\n=> {err}");
        assert!(err.contains("config.toml"), "names the file: {err}");
    }
}
