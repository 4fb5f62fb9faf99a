//! Loading settings: layering, error messages that name key and source, durations, the SDK
//! variables, token files, redaction, and the check-config report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;

use opsync::config::{
    ConfigError, EnvVars, LoadOptions, Loader, LogFormat, Overrides, Settings, check,
};
use opsync::connect::token::{ACL_READ, ACL_READ_WRITE};
use opsync::connect_dev::{DevServer, DevServerOptions};

const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("writes");
        path
    }

    fn config(&self, text: &str) -> PathBuf {
        self.file("config.toml", text)
    }
}

fn options(file: &Path, env: &[(&str, &str)], overrides: Overrides) -> LoadOptions {
    LoadOptions {
        config_file: Some(file.to_path_buf()),
        env: env.iter().copied().collect::<EnvVars>(),
        overrides,
    }
}

fn load(file: &Path, env: &[(&str, &str)], overrides: Overrides) -> Result<Settings, ConfigError> {
    Settings::load(&options(file, env, overrides))
}

fn load_err(file: &Path, env: &[(&str, &str)]) -> String {
    load(file, env, Overrides::default())
        .expect_err("the configuration is refused")
        .to_string()
}

#[test]
fn layers_file_then_sdk_env_then_opsync_env_then_flags() {
    let fx = Fixture::new();
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://from-file:1\"\ntoken = \"{TOKEN}\"\ntimeout = \"3s\"\n\n[log]\nlevel = \"debug\"\n"
    ));
    let host = |env: &[(&str, &str)], flag: Option<&str>| {
        let overrides = Overrides {
            connect_host: flag.map(str::to_owned),
            ..Overrides::default()
        };
        load(&file, env, overrides)
            .expect("loads")
            .connect
            .host
            .to_string()
    };
    assert_eq!(host(&[], None), "http://from-file:1/");
    let sdk = ("OP_CONNECT_HOST", "http://from-sdk-env:2");
    assert_eq!(host(&[sdk], None), "http://from-sdk-env:2/");
    let ours = ("OPSYNC_CONNECT__HOST", "http://from-opsync-env:3");
    assert_eq!(host(&[sdk, ours], None), "http://from-opsync-env:3/");
    assert_eq!(
        host(&[sdk, ours], Some("http://from-flag:4")),
        "http://from-flag:4/"
    );

    // Untouched keys keep their file values; unset ones their defaults.
    let s = load(&file, &[ours], Overrides::default()).expect("loads");
    assert_eq!(s.connect.timeout, Duration::from_secs(3));
    assert_eq!(s.connect.connect_timeout, Duration::from_secs(5));
    assert_eq!(s.log.level.as_str(), "debug");
    assert_eq!(s.log.format, LogFormat::Text);

    let s = load(
        &file,
        &[("OPSYNC_LOG__FORMAT", "json")],
        Overrides {
            log_level: Some("warn".to_owned()),
            ..Overrides::default()
        },
    )
    .expect("loads");
    assert_eq!(s.log.level.as_str(), "warn");
    assert_eq!(s.log.format, LogFormat::Json);
}

#[test]
fn sdk_variables_alone_are_enough() {
    let fx = Fixture::new();
    let file = fx.config("");
    let s = load(
        &file,
        &[
            ("OP_CONNECT_HOST", "http://127.0.0.1:8080"),
            ("OP_CONNECT_TOKEN", &format!(" {TOKEN}\n")),
        ],
        Overrides::default(),
    )
    .expect("loads from the SDK variables");
    assert_eq!(s.connect.host.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(s.connect.token.expose(), TOKEN, "trimmed");

    // OPSYNC_ variables sit above the SDK ones.
    let s = load(
        &file,
        &[
            ("OP_CONNECT_HOST", "http://127.0.0.1:8080"),
            ("OP_CONNECT_TOKEN", "sdk-token"),
            ("OPSYNC_CONNECT__TOKEN", "opsync-token"),
        ],
        Overrides::default(),
    )
    .expect("loads");
    assert_eq!(s.connect.token.expose(), "opsync-token");
}

#[test]
fn unknown_keys_name_the_key_and_where_it_came_from() {
    let fx = Fixture::new();
    let file = fx.config("[connect]\nhots = \"http://x\"\n");
    assert_eq!(
        load_err(&file, &[]),
        format!(
            "{}: unknown key connect.hots (expected one of host, token, token_file, timeout, \
             connect_timeout, pool_idle_timeout, max_idle_per_host, user_agent)",
            file.display()
        )
    );

    let file = fx.config("[conect]\nhost = \"http://x\"\n");
    let msg = load_err(&file, &[]);
    assert!(
        msg.starts_with(&format!("{}: unknown key conect ", file.display())),
        "{msg}"
    );
    assert!(msg.contains("connect, log, state"), "{msg}");

    let file = fx.config("");
    let msg = load_err(&file, &[("OPSYNC_CONNECT__HOTS", "x")]);
    assert!(
        msg.starts_with("environment variable OPSYNC_CONNECT__HOTS: unknown key connect.hots"),
        "{msg}"
    );
}

#[test]
fn wrong_types_name_the_key_path() {
    let fx = Fixture::new();
    let file = fx.config("[connect]\nhost = \"http://x\"\nmax_idle_per_host = \"lots\"\n");
    assert_eq!(
        load_err(&file, &[("OP_CONNECT_TOKEN", TOKEN)]),
        format!(
            "{}: connect.max_idle_per_host: expected a whole number, found string \"lots\"",
            file.display()
        )
    );

    let file = fx.config("connect = 5\n");
    let msg = load_err(&file, &[]);
    assert_eq!(
        msg,
        format!(
            "{}: connect: expected a table, found signed int `5`",
            file.display()
        )
    );

    let file = fx.config("[log]\nformat = \"xml\"\n");
    assert_eq!(
        load_err(&file, &[]),
        format!(
            "{}: log.format: unknown value \"xml\" (expected one of text, json)",
            file.display()
        )
    );

    let file = fx.config("[connect]\nhost = \"ftp://x\"\n");
    assert_eq!(
        load_err(&file, &[]),
        format!(
            "{}: connect.host: \"ftp://x\" is not an http:// or https:// URL",
            file.display()
        )
    );
}

#[test]
fn a_mistyped_token_is_not_echoed() {
    let fx = Fixture::new();
    let file = fx.config("[connect]\nhost = \"http://x\"\ntoken = 918273645\n");
    let msg = load_err(&file, &[]);
    assert!(!msg.contains("918273645"), "{msg}");
    assert!(
        msg.starts_with(&format!("{}: connect.token: ", file.display())),
        "{msg}"
    );

    // A numeric-looking token from the environment is still a string.
    let file = fx.config("[connect]\nhost = \"http://x\"\n");
    let s = load(
        &file,
        &[("OPSYNC_CONNECT__TOKEN", "918273645")],
        Overrides::default(),
    )
    .expect("loads");
    assert_eq!(s.connect.token.expose(), "918273645");
}

#[test]
fn durations_take_units() {
    let fx = Fixture::new();
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://x\"\ntoken = \"{TOKEN}\"\ntimeout = \"500ms\"\npool_idle_timeout = \"1m 30s\"\n"
    ));
    let s = load(&file, &[], Overrides::default()).expect("loads");
    assert_eq!(s.connect.timeout, Duration::from_millis(500));
    assert_eq!(s.connect.pool_idle_timeout, Duration::from_secs(90));

    let file = fx.config("[connect]\ntimeout = \"2 parsecs\"\n");
    let msg = load_err(&file, &[]);
    assert!(
        msg.starts_with(&format!(
            "{}: connect.timeout: invalid duration \"2 parsecs\": ",
            file.display()
        )),
        "{msg}"
    );

    let file = fx.config("");
    let msg = load_err(&file, &[("OPSYNC_CONNECT__TIMEOUT", "5")]);
    assert_eq!(
        msg,
        "environment variable OPSYNC_CONNECT__TIMEOUT (connect.timeout): expected a duration with a unit, \
         like \"10s\" or \"500ms\", found unsigned int `5`"
    );

    let file = fx.config(&format!(
        "[connect]\nhost = \"http://x\"\ntoken = \"{TOKEN}\"\ntimeout = \"0s\"\n"
    ));
    assert_eq!(
        load_err(&file, &[]),
        format!(
            "{}: connect.timeout: must be more than zero",
            file.display()
        )
    );
}

#[test]
fn missing_required_values_say_where_to_set_them() {
    let fx = Fixture::new();
    let file = fx.config("");
    assert_eq!(
        load_err(&file, &[]),
        format!(
            "connect.host is required (set it in {} [connect] host, OPSYNC_CONNECT__HOST or OP_CONNECT_HOST)",
            file.display()
        )
    );
    let msg = load_err(&file, &[("OP_CONNECT_HOST", "http://x")]);
    assert!(
        msg.starts_with("connect.token is required (set it in "),
        "{msg}"
    );
    assert!(msg.contains("OP_CONNECT_TOKEN"), "{msg}");

    let missing = fx.dir.path().join("nope.toml");
    let err = load(&missing, &[], Overrides::default()).expect_err("explicit file must exist");
    assert!(matches!(err, ConfigError::FileNotFound { .. }));
    assert_eq!(
        err.to_string(),
        format!("config file {} not found", missing.display())
    );
}

#[test]
fn token_files_are_read_trimmed_and_relative_to_the_config() {
    let fx = Fixture::new();
    fx.file("token.jwt", &format!("\n  {TOKEN}  \n"));
    let file = fx.config("[connect]\nhost = \"http://x\"\ntoken_file = \"token.jwt\"\n");
    let s = load(&file, &[], Overrides::default()).expect("loads");
    assert_eq!(s.connect.token.expose(), TOKEN);
    assert_eq!(
        s.connect.token_file.as_deref(),
        Some(fx.dir.path().join("token.jwt").as_path())
    );

    // A token file given as a flag beats a token in the file.
    let other = fx.file("other.jwt", "flag-token");
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://x\"\ntoken = \"{TOKEN}\"\n"
    ));
    let s = load(
        &file,
        &[],
        Overrides {
            connect_token_file: Some(other),
            ..Overrides::default()
        },
    )
    .expect("loads");
    assert_eq!(s.connect.token.expose(), "flag-token");

    // A token in OPSYNC_ env beats a token file in the config file.
    let file = fx.config("[connect]\nhost = \"http://x\"\ntoken_file = \"token.jwt\"\n");
    let s = load(
        &file,
        &[("OPSYNC_CONNECT__TOKEN", "env-token")],
        Overrides::default(),
    )
    .expect("loads");
    assert_eq!(s.connect.token.expose(), "env-token");
    assert_eq!(s.connect.token_file, None);

    // Both in the same file: ambiguous.
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://x\"\ntoken = \"{TOKEN}\"\ntoken_file = \"token.jwt\"\n"
    ));
    assert_eq!(
        load_err(&file, &[]),
        format!(
            "{}: connect.token_file: connect.token is set in the same place; set only one of them",
            file.display()
        )
    );

    fx.file("empty.jwt", " \n");
    let file = fx.config("[connect]\nhost = \"http://x\"\ntoken_file = \"empty.jwt\"\n");
    let msg = load_err(&file, &[]);
    assert!(
        msg.starts_with(&format!("{}: connect.token_file: ", file.display())),
        "{msg}"
    );
    assert!(msg.ends_with("empty.jwt is empty"), "{msg}");

    let file = fx.config("");
    let msg = load_err(
        &file,
        &[
            ("OP_CONNECT_HOST", "http://x"),
            ("OPSYNC_CONNECT__TOKEN_FILE", "/nonexistent/token"),
        ],
    );
    assert!(
        msg.starts_with(
            "environment variable OPSYNC_CONNECT__TOKEN_FILE (connect.token_file): cannot read /nonexistent/token: "
        ),
        "{msg}"
    );
}

#[test]
fn state_path_is_relative_to_the_config_file() {
    let fx = Fixture::new();
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://x\"\ntoken = \"{TOKEN}\"\n[state]\npath = \"data/opsync.db\"\n"
    ));
    let s = load(&file, &[], Overrides::default()).expect("loads");
    assert_eq!(s.state.path, fx.dir.path().join("data/opsync.db"));
}

#[test]
fn the_log_section_loads_without_connect_settings() {
    let fx = Fixture::new();
    let file = fx.config("[log]\nformat = \"json\"\n");
    let loader = Loader::new(&options(&file, &[], Overrides::default())).expect("stacks");
    assert_eq!(loader.file(), Some(file.as_path()));
    let log = loader.log().expect("log section alone is fine");
    assert_eq!(log.format, LogFormat::Json);
    assert!(loader.settings().is_err(), "the host is still required");

    let file = fx.config("[log]\nlevel = \"loud\"\n");
    let loader = Loader::new(&options(&file, &[], Overrides::default())).expect("stacks");
    let msg = loader.log().expect_err("bad level").to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: log.level: invalid log level \"loud\"",
            file.display()
        )),
        "{msg}"
    );
}

#[test]
fn effective_config_redacts_the_token() {
    let fx = Fixture::new();
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://x\"\ntoken = \"{TOKEN}\"\n"
    ));
    let s = load(&file, &[], Overrides::default()).expect("loads");
    let text = s.to_redacted_toml();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("token = \"<redacted>\""), "{text}");
    assert!(text.contains("timeout = \"10s\""), "{text}");
    assert!(!format!("{s:?}").contains(TOKEN));
    // What is printed parses back as a config file.
    let back: toml::Value = toml::from_str(&text).expect("valid TOML");
    assert_eq!(back["connect"]["host"].as_str(), Some("http://x/"));
}

#[test]
fn the_admin_token_is_checked_read_from_its_file_and_redacted() {
    let fx = Fixture::new();
    let base = format!("[connect]\nhost = \"http://x\"\ntoken = \"{TOKEN}\"\n[admin]\n");
    let short = fx.config(&format!("{base}token = \"short\"\n"));
    let err = load_err(&short, &[]);
    assert!(
        err.contains("admin.token") && err.contains("at least 16"),
        "{err}"
    );
    assert!(!err.contains("\"short\""), "the token is not echoed: {err}");

    fx.file("admin.token", "  the-admin-token-0123456789\n");
    let both = fx.config(&format!(
        "{base}token = \"the-admin-token-0123456789\"\ntoken_file = \"admin.token\"\n"
    ));
    let err = load_err(&both, &[]);
    assert!(
        err.contains("admin.token_file") && err.contains("only one"),
        "{err}"
    );

    let from_file = fx.config(&format!(
        "{base}token_file = \"admin.token\"\nopen_metrics = true\n"
    ));
    let s = load(&from_file, &[], Overrides::default()).expect("loads");
    let token = s.admin.token.as_ref().expect("token read");
    assert_eq!(token.expose(), "the-admin-token-0123456789");
    assert!(s.admin.open_metrics);
    let text = s.to_redacted_toml();
    assert!(!text.contains("the-admin-token-0123456789"), "{text}");
    assert!(!format!("{s:?}").contains("the-admin-token-0123456789"));

    // From the environment, as a Kubernetes Secret would give it.
    let plain = fx.config(&base);
    let s = load(
        &plain,
        &[("OPSYNC_ADMIN__TOKEN", "env-admin-token-0123456789")],
        Overrides::default(),
    )
    .expect("loads");
    assert_eq!(
        s.admin.token.as_ref().map(|t| t.expose()),
        Some("env-admin-token-0123456789")
    );
}

/// An unsigned token with these claims (check-config never verifies signatures).
fn token_with(exp: Option<i64>, grants: &[(&str, u32)]) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let vts: Vec<_> = grants
        .iter()
        .map(|(u, a)| serde_json::json!({"a": a, "u": u}))
        .collect();
    let mut claims = serde_json::json!({
        "1password.com/auuid": "GTKV5VRNTREGPELXN5BPRA2GN4",
        "1password.com/token": "per-token-secret",
        "1password.com/vts": vts,
        "iat": 1_700_000_000,
        "iss": "com.1password.b5",
        "jti": "6n62dxrjpqem4hbxwwqtbm6jle",
        "sub": "AV4QNEC7PRFDFEE2IDJM3CRICI",
    });
    if let Some(exp) = exp {
        claims["exp"] = exp.into();
    }
    format!(
        "{}.{}.c2ln",
        engine.encode(br#"{"alg":"ES256","typ":"JWT"}"#),
        engine.encode(claims.to_string())
    )
}

fn settings_with_token(token: &str) -> Settings {
    let fx = Fixture::new();
    let file = fx.config("");
    load(
        &file,
        &[
            ("OP_CONNECT_HOST", "http://127.0.0.1:9"),
            ("OP_CONNECT_TOKEN", token),
        ],
        Overrides::default(),
    )
    .expect("loads")
}

#[tokio::test]
async fn check_shows_grants_and_warns_before_expiry() {
    let now = Utc::now();
    let token = token_with(
        Some(now.timestamp() + 2 * 24 * 3600),
        &[
            ("otl6r6nugj5wr63rnkw3v4pbna", ACL_READ_WRITE),
            ("hfnjvi6aymbsnfc2xeeoheizda", ACL_READ),
        ],
    );
    let report = check(&settings_with_token(&token), false, now).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(!report.text.contains(&token));
    assert!(!report.text.contains("per-token-secret"));
    assert!(
        report
            .text
            .contains("account     GTKV5VRNTREGPELXN5BPRA2GN4"),
        "{}",
        report.text
    );
    assert!(
        report
            .text
            .contains("token id    6n62dxrjpqem4hbxwwqtbm6jle")
    );
    assert!(report.text.contains("issuer      com.1password.b5"));
    assert!(report.text.contains("issued at   2023-11-14T22:13:20Z"));
    assert!(
        report.text.contains("  otl6r6nugj5wr63rnkw3v4pbna  rw\n"),
        "{}",
        report.text
    );
    assert!(
        report.text.contains("  hfnjvi6aymbsnfc2xeeoheizda  r\n"),
        "{}",
        report.text
    );
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("expires"),
        "{:?}",
        report.warnings
    );
    assert!(
        report.warnings[0].contains(", in 2 days;"),
        "{:?}",
        report.warnings
    );
    assert!(report.text.contains(" (in 2 days)\n"), "{}", report.text);

    let far = token_with(
        Some(now.timestamp() + 30 * 24 * 3600),
        &[("otl6r6nugj5wr63rnkw3v4pbna", ACL_READ)],
    );
    let report = check(&settings_with_token(&far), false, now).await;
    assert!(
        report.warnings.is_empty() && report.errors.is_empty(),
        "{report:?}"
    );

    let never = token_with(None, &[("otl6r6nugj5wr63rnkw3v4pbna", ACL_READ)]);
    let report = check(&settings_with_token(&never), false, now).await;
    assert!(report.text.contains("expires     never"), "{}", report.text);
    assert!(report.warnings.is_empty() && report.errors.is_empty());
}

#[tokio::test]
async fn check_warns_when_route_concurrency_outgrows_the_connection_pool() {
    let token = token_with(None, &[("otl6r6nugj5wr63rnkw3v4pbna", ACL_READ)]);
    let fx = Fixture::new();
    let routes = r#"
[plugins.files]
builtin = "file"
grants = { dirs = [{ host = "out" }] }
[[route]]
name = "a"
destinations = ["files"]
concurrency = 20
[[route]]
name = "b"
destinations = ["files"]
concurrency = 20
"#;
    let env = [
        ("OP_CONNECT_HOST", "http://127.0.0.1:9"),
        ("OP_CONNECT_TOKEN", token.as_str()),
    ];
    let settings = load(&fx.config(routes), &env, Overrides::default()).expect("loads");
    let report = check(&settings, false, Utc::now()).await;
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("connect.max_idle_per_host is 32")
            && report.warnings[0].contains("adds up to 40"),
        "{:?}",
        report.warnings
    );
    let roomy = format!("[connect]\nmax_idle_per_host = 40\n{routes}");
    let settings = load(&fx.config(&roomy), &env, Overrides::default()).expect("loads");
    let report = check(&settings, false, Utc::now()).await;
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[tokio::test]
async fn check_fails_on_expired_or_unreadable_tokens() {
    let now = Utc::now();
    let expired = token_with(
        Some(now.timestamp() - 3600),
        &[("otl6r6nugj5wr63rnkw3v4pbna", ACL_READ)],
    );
    let report = check(&settings_with_token(&expired), false, now).await;
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert!(report.errors[0].contains("expired"), "{:?}", report.errors);
    assert!(report.text.contains("(expired)"));

    let report = check(&settings_with_token("not-a-jwt"), false, now).await;
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].starts_with("connect.token: "),
        "{:?}",
        report.errors
    );
    assert!(!report.errors[0].contains("not-a-jwt"));
}

#[tokio::test]
async fn check_online_resolves_vault_names() {
    let server = DevServer::start(DevServerOptions::default())
        .await
        .expect("connect-dev starts");
    let fx = Fixture::new();
    let file = fx.config("");
    let settings = load(
        &file,
        &[
            ("OP_CONNECT_HOST", &server.base_url()),
            ("OP_CONNECT_TOKEN", server.token()),
        ],
        Overrides::default(),
    )
    .expect("loads");
    let report = check(&settings, true, Utc::now()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        report.text.contains("server      1Password Connect"),
        "{}",
        report.text
    );
    for name in ["Production", "Staging", "Shared"] {
        assert!(
            report.text.contains(&format!("  rw  {name}\n")),
            "{}",
            report.text
        );
    }
    server.shutdown().await;

    // Nothing listens there any more: an error, not a hang.
    let report = check(&settings, true, Utc::now()).await;
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert!(
        report.errors[0].starts_with("could not reach the Connect server at "),
        "{:?}",
        report.errors
    );
}

#[test]
fn state_only_commands_need_no_connect_settings_and_retention_is_checked() {
    let fx = Fixture::new();
    // No [connect], and a route naming a plugin that does not exist: status and deadletter only
    // read [state] and the route names.
    let file = fx.config(
        "[state]\npath = \"db/opsync.db\"\nledger_retention = \"2d\"\n\n\
         [[route]]\nname = \"prod\"\ndestinations = [\"nowhere\"]\n",
    );
    let loader = Loader::new(&options(&file, &[], Overrides::default())).expect("loader");
    let local = loader.local().expect("[state] alone is enough");
    assert_eq!(local.state.path, fx.dir.path().join("db/opsync.db"));
    assert_eq!(local.state.ledger_retention, Duration::from_secs(2 * 86400));
    assert_eq!(local.routes, ["prod"]);
    assert!(
        loader.settings().is_err(),
        "the full settings still need Connect"
    );
    // The default retention, and zero refused naming the key.
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://localhost:8080\"\ntoken = \"{TOKEN}\"\n"
    ));
    let settings = load(&file, &[], Overrides::default()).expect("loads");
    assert_eq!(
        settings.state.ledger_retention,
        opsync::config::DEFAULT_LEDGER_RETENTION
    );
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://localhost:8080\"\ntoken = \"{TOKEN}\"\n\
         [state]\nledger_retention = \"0s\"\n"
    ));
    let err = load_err(&file, &[]);
    assert!(err.contains("state.ledger_retention"), "{err}");
}

#[test]
fn plugin_config_keys_starting_with_opsync_are_reserved() {
    let fx = Fixture::new();
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://localhost:8080\"\ntoken = \"{TOKEN}\"\n\
         [plugins.files]\nbuiltin = \"file\"\nconfig = {{ \"opsync.key\" = \"mine\" }}\n"
    ));
    let err = load_err(&file, &[]);
    assert!(
        err.contains("plugins.files.config.opsync.key") && err.contains("reserved"),
        "{err}"
    );
}

#[test]
fn plugin_config_takes_numbers_and_booleans_as_text_and_refuses_tables() {
    let fx = Fixture::new();
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://localhost:8080\"\ntoken = \"{TOKEN}\"\n\
         [plugins.files]\nbuiltin = \"file\"\n\
         config = {{ format = \"dotenv\", fsync = true, recovery-window-days = 7, ratio = 0.5 }}\n"
    ));
    let settings = load(&file, &[], Overrides::default()).expect("scalars load");
    let plugin = settings
        .plugins
        .iter()
        .find(|p| p.name == "files")
        .expect("the instance");
    assert_eq!(plugin.config["format"], "dotenv");
    assert_eq!(plugin.config["fsync"], "true");
    assert_eq!(plugin.config["recovery-window-days"], "7");
    assert_eq!(plugin.config["ratio"], "0.5");

    let file = fx.config(&format!(
        "[connect]\nhost = \"http://localhost:8080\"\ntoken = \"{TOKEN}\"\n\
         [plugins.files]\nbuiltin = \"file\"\nconfig = {{ fields = [\"a\", \"b\"] }}\n"
    ));
    let err = load_err(&file, &[]);
    assert!(
        err.contains("plugins.files.config.fields") && err.contains("found an array"),
        "{err}"
    );
}

/// Every key of the effective settings (`check-config` prints them) of a config that uses every
/// section, as the configuration reference must name it.
fn documented_names(value: &toml::Value, path: &str, out: &mut Vec<String>) {
    let toml::Value::Table(table) = value else {
        out.push(path.to_owned());
        return;
    };
    for (key, inner) in table {
        let name = match path {
            "" => key.clone(),
            // A route's and a plugin instance's keys are listed bare in their tables.
            p if p.starts_with("route[i]") || p.starts_with("plugins.NAME") => key.clone(),
            p => format!("{p}.{key}"),
        };
        match inner {
            toml::Value::Array(items) if items.iter().all(toml::Value::is_table) => {
                for item in items {
                    documented_names(item, &format!("{name}[i]"), out);
                }
            }
            toml::Value::Table(_) if path.is_empty() && key == "plugins" => {
                for instance in inner.as_table().into_iter().flat_map(|t| t.values()) {
                    documented_names(instance, "plugins.NAME", out);
                }
            }
            toml::Value::Table(_) if path.starts_with("plugins.NAME") => out.push(name),
            _ => documented_names(inner, &name, out),
        }
    }
}

#[test]
fn the_configuration_reference_names_every_key() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.dir.path().join("out")).expect("dir");
    fx.file("admin.token", "an-admin-token-long-enough\n");
    let file = fx.config(&format!(
        "[connect]\nhost = \"http://localhost:8080\"\ntoken = \"{TOKEN}\"\n\
         [admin]\nlisten = \"127.0.0.1:9464\"\ntoken_file = \"admin.token\"\n\
         [plugins.files]\nbuiltin = \"file\"\nconfig = {{ format = \"dotenv\" }}\n\
         grants = {{ dirs = [{{ host = \"out\" }}] }}\n\
         [plugins.pw]\nbuiltin = \"password\"\n\
         [plugins.siem]\nbuiltin = \"syslog\"\nconfig = {{ address = \"127.0.0.1:514\" }}\n\
         grants = {{ tcp = [\"127.0.0.1:514\"] }}\n\
         [[route]]\nname = \"r\"\ndestinations = [\"files\"]\n\
         [[rotation]]\nname = \"j\"\nitem = \"op://V/I\"\nplugin = \"pw\"\nschedule = \"@daily\"\n\
         [[audit.sink]]\nplugin = \"siem\"\n"
    ));
    let settings = load(&file, &[], Overrides::default()).expect("loads");
    let effective: toml::Value = settings
        .to_redacted_toml()
        .parse()
        .expect("the effective settings are TOML");
    let mut names = Vec::new();
    documented_names(&effective, "", &mut names);
    names.sort();
    names.dedup();
    let reference = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .expect("docs/configuration.md");
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !reference.contains(&format!("`{name}`")))
        .collect();
    assert!(names.len() > 40, "{names:?}");
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not name {missing:?}"
    );
}
