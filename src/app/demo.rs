//! `opsync demo`: the embedded Connect server with demo data plus the daemon, delivering through
//! the built-in `file` plugin into a local directory, with a config a person can read and reuse.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::app::error::AppError;
use crate::app::run::{RunOptions, RunSummary, run};
use crate::config::{EnvVars, LoadOptions, Loader, Overrides, Settings};
use crate::connect::client::ConnectClient;
use crate::connect::model::FieldType;
use crate::connect_dev::{DevServer, DevServerOptions, Seed};
use crate::shutdown::Shutdown;

/// `opsync demo` options.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where the demo keeps its config, state and delivered files.
    pub dir: PathBuf,
    /// Where the embedded Connect server listens.
    pub listen: SocketAddr,
    /// Where the admin listener listens.
    pub admin_listen: SocketAddr,
    /// What `/metrics` renders (see `RunOptions::metrics`).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// The demo config; `{host}` and `{admin}` are filled in.
const CONFIG: &str = r#"# Written by `opsync demo` (rewritten at every start). Reuse it with
#   opsync --config opsync-demo/config.toml status
[connect]
host = "{host}"
token_file = "connect-token.jwt"

[state]
path = "state.db"

[sync]
poll_interval = "1s"
full_reconcile_interval = "5m"

[admin]
listen = "{admin}"

# The built-in file plugin, allowed to write only into ./files.
[plugins.files]
builtin = "file"
config = { format = "dotenv", name = "{{vault}}/{{title}}.env", on-delete = "delete" }
grants = { dirs = [{ host = "files" }] }

# Every item of every vault, one dotenv file per item; deleted items are deleted.
[[route]]
name = "demo"
destinations = ["files"]
on_delete = "delete"
"#;

/// Writes the demo directory, starts Connect and the daemon, prints how to try it, and runs
/// until `shutdown`.
pub async fn demo(options: DemoOptions, shutdown: Shutdown) -> Result<RunSummary, AppError> {
    let dir = &options.dir;
    let files = dir.join("files");
    std::fs::create_dir_all(&files)
        .map_err(|e| AppError::io(format!("creating {}", files.display()), e))?;
    let server = DevServer::start(DevServerOptions {
        listen: options.listen,
        seed: Seed::Demo,
        state: Some(dir.join("connect-dev.json")),
        ..DevServerOptions::default()
    })
    .await?;
    let host = server.base_url();
    write_private(&dir.join("connect-token.jwt"), server.token())?;
    let config = CONFIG
        .replace("{host}", &host)
        .replace("{admin}", &options.admin_listen.to_string());
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config)
        .map_err(|e| AppError::io(format!("writing {}", config_path.display()), e))?;
    let settings = Loader::new(&LoadOptions {
        config_file: Some(config_path.clone()),
        env: EnvVars::default(),
        overrides: Overrides::default(),
    })?
    .settings()?;

    println!("OP_CONNECT_HOST={host}");
    println!("OP_CONNECT_TOKEN={}", server.token());
    print!("{}", try_it(&settings, dir).await);

    let summary = run(
        settings,
        RunOptions {
            on_admin: Some(|addr| {
                println!("# status page: http://{addr}/ (JSON: /status)");
                println!("# metrics and health: http://{addr}/metrics /healthz /readyz")
            }),
            metrics: options.metrics.clone(),
            ..RunOptions::default()
        },
        shutdown,
    )
    .await;
    server.shutdown().await;
    summary
}

/// The "change an item and watch it sync" example, with a real item of the demo data.
async fn try_it(settings: &Settings, dir: &Path) -> String {
    let files = dir.join("files");
    let mut text = format!(
        "# opsync is syncing every demo item into {}/ (config: {}).\n",
        files.display(),
        dir.join("config.toml").display()
    );
    let Ok(client) = ConnectClient::new(&settings.connect) else {
        return text;
    };
    let example = async {
        let vault = client.find_vault_by_name("Production").await.ok()?;
        let items = client.list_items(&vault.id, None).await.ok()?;
        for summary in items {
            let item = client.get_item(&vault.id, &summary.id).await.ok()?;
            let field = item
                .fields
                .iter()
                .flatten()
                .find(|f| f.field_type == FieldType::Concealed);
            if let Some(field) = field {
                return Some((vault, item.title.clone(), item.id.clone(), field.id.clone()));
            }
        }
        None
    };
    if let Some((vault, title, item_id, field_id)) = example.await {
        text.push_str(&format!(
            "# Change an item and watch it sync (in another terminal, with the two lines above exported):\n\
             #   curl -s -X PATCH \"$OP_CONNECT_HOST/v1/vaults/{vid}/items/{item_id}\" \\\n\
             #     -H \"Authorization: Bearer $OP_CONNECT_TOKEN\" -H 'Content-Type: application/json' \\\n\
             #     -d '[{{\"op\":\"replace\",\"path\":\"/fields/{field_id}/value\",\"value\":\"changed-by-me\"}}]'\n\
             #   cat {path}      # within a couple of seconds it holds the new value\n\
             #   opsync --config {config} status\n",
            vid = vault.id,
            path = files
                .join(file_name(&vault.name))
                .join(format!("{}.env", file_name(&title)))
                .display(),
            config = dir.join("config.toml").display(),
        ));
    }
    text.push_str("# Ctrl-C stops the demo; running it again picks up where it left off.\n");
    text
}

/// A name as the `file` plugin writes it: characters other than letters, digits, `.`, `-`
/// and `_` become `_`.
fn file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> Result<(), AppError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |e| AppError::io(format!("writing {}", path.display()), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(content.as_bytes()).map_err(err)
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> Result<(), AppError> {
    std::fs::write(path, content)
        .map_err(|e| AppError::io(format!("writing {}", path.display()), e))
}
