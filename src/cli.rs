//! The command line: subcommands, flags and their help text (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LoadOptions, Overrides};
use crate::connect_dev::cli::ConnectDevArgs;

const ABOUT: &str = "Keeps secrets flowing out of 1Password Connect into other stores, \
                     through sandboxed WebAssembly plugins";

const LONG_ABOUT: &str = "\
opsync watches a 1Password Connect server for item changes and hands them to sandboxed \
WebAssembly plugins that push secrets elsewhere, rotate credentials, or ship the audit log.

Settings come from a TOML config file, then environment variables, then flags; each layer \
overrides the one before:
  1. the config file: --config PATH, or ./config.toml when it exists
  2. OP_CONNECT_HOST and OP_CONNECT_TOKEN, as the official 1Password SDKs read them
  3. OPSYNC_* variables, with __ between nested keys: OPSYNC_CONNECT__TIMEOUT=5s
  4. command-line flags such as --connect-host and --log-level";

const AFTER_HELP: &str = "\
Getting started:
  opsync demo                 # a demo Connect server and the daemon syncing it into ./opsync-demo/

Or step by step:
  opsync connect-dev          # in another terminal: a local Connect server with demo data;
                              # it prints OP_CONNECT_HOST=... and OP_CONNECT_TOKEN=... lines
  export OP_CONNECT_HOST=http://127.0.0.1:8080 OP_CONNECT_TOKEN=eyJ...   # those two lines
  opsync check-config --online  # what opsync will use, and what the token grants

A minimal config.toml:
  [connect]
  host = \"http://127.0.0.1:8080\"
  token_file = \"connect-token.jwt\"
  timeout = \"10s\"";

/// `opsync`: the top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "opsync",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Config file to read [default: ./config.toml, if it exists]
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "PATH",
        env = "OPSYNC_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Log level or filter, e.g. debug or "info,opsync::connect=debug" (overrides log.level)
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log format: text or json (overrides log.format)
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local Connect-compatible server with demo data, for trying opsync out and for tests
    #[command(
        long_about = "Runs an embedded server that speaks the 1Password Connect API, with demo \
                      vaults and items, so opsync can be tried and tested without a 1Password \
                      account. It prints OP_CONNECT_HOST and OP_CONNECT_TOKEN lines on stdout \
                      (a token with read-write access to every vault) and serves until Ctrl-C. \
                      `connect-dev token` mints tokens with narrower grants or an expiry."
    )]
    ConnectDev(Box<ConnectDevArgs>),

    /// Show the effective configuration (secrets redacted) and what the Connect token grants
    #[command(
        long_about = "Loads the configuration from every layer, checks it, and prints the \
                      effective settings as TOML with secrets shown as <redacted>. Then decodes \
                      the Connect token and shows its account, id, issuer, expiry and the vaults \
                      it grants with their access (r or rw).\n\n\
                      Nothing is sent over the network unless --online is given.\n\n\
                      Exit status: 0 when the configuration is usable (a token expiring within \
                      7 days only warns), 1 when it is not (invalid settings, an expired token, \
                      or with --online an unreachable server).",
        after_help = "Examples:\n  \
                      opsync check-config\n  \
                      opsync --config /etc/opsync/config.toml check-config --online\n  \
                      OP_CONNECT_HOST=http://127.0.0.1:8080 OP_CONNECT_TOKEN=eyJ... opsync check-config"
    )]
    CheckConfig(CheckConfigArgs),

    /// Run the sync daemon: poll Connect, deliver changes to every route's destinations
    #[command(
        long_about = "Polls Connect every sync.poll_interval (an idle poll is one request), writes \
                      each change to the state database's delivery ledger, and delivers it to \
                      every destination plugin of every route that selects the item, with bounded \
                      concurrency, retries with backoff, and dead letters. With [admin] listen \
                      set, serves /metrics, /healthz and /readyz.\n\n\
                      SIGTERM or SIGINT stops polling at once and lets in-flight deliveries finish \
                      within delivery.shutdown_grace; anything cut off stays in the ledger and is \
                      delivered after the next start.",
        after_help = "Examples:\n  opsync run\n  opsync --config /etc/opsync/config.toml run --admin-listen 127.0.0.1:9464"
    )]
    Run(RunArgs),

    /// One detect-and-deliver cycle, then exit; the exit code says whether anything failed
    #[command(
        long_about = "Polls Connect once, delivers everything that is due, prints a summary and exits.\n\n\
                      Exit status: 0 when everything was delivered; 1 when something failed (a \
                      delivery to retry or dead-lettered, a plugin that cannot load, a vault that \
                      could not be listed); 2 when nothing failed but a route's deletions are held \
                      by its max_delete_ratio (run again with --allow-mass-delete to apply them). \
                      A third-party plugin whose component does not match its pinned sha256 stops \
                      the command before anything runs, unless --allow-unusable-plugins.",
        after_help = "Examples:\n  opsync once\n  opsync once --allow-mass-delete   # apply deletions a route holds"
    )]
    Once(OnceArgs),

    /// Dry run: what the next cycle would create, update and delete, per route and destination
    #[command(
        long_about = "Reads Connect and the state database and shows, per route and destination, \
                      the keys that would be created, updated and deleted, the fields each would \
                      carry with their values masked, and deletions a route would hold. Nothing is \
                      written anywhere (the state database is read from a private copy) and no \
                      plugin is called.\n\nExit status: 0 when there is nothing to do, 2 when \
                      there are changes or deletions held by a route's max_delete_ratio (as \
                      `once`), 1 on error.",
        after_help = "Examples:\n  opsync plan\n  opsync plan && echo nothing to do"
    )]
    Plan(PlanArgs),

    /// Per route: last success, lag, pending deliveries, dead letters and held deletions
    #[command(
        long_about = "Per route: last success, lag, pending deliveries, dead letters and held \
                      deletions. Reads only the state database: it needs [state] path (or \
                      --state), not Connect's host or token. With --json, the whole status \
                      document the admin listener serves on /status (schema opsync.status/v1: \
                      Connect health, routes and destinations, rotations, audit sinks, dead \
                      letters); it reads the whole config, Connect's token excepted.",
        after_help = "Examples:\n  opsync status\n  opsync status --state /var/lib/opsync/state.db\n  \
                      opsync status --json | jq '.routes[] | {name, lag_seconds}'"
    )]
    Status(StatusArgs),

    /// List dead letters, or queue them again
    #[command(
        subcommand,
        after_help = "Examples:\n  opsync deadletter list --route prod\n  opsync deadletter retry --all"
    )]
    Deadletter(DeadletterCommand),

    /// Try opsync in one command: a demo Connect server and the daemon syncing into ./opsync-demo/
    #[command(
        long_about = "Starts the embedded Connect server with demo vaults and items, writes a demo \
                      config into the demo directory, and runs the daemon, which delivers every \
                      item through the built-in file plugin into DIR/files/ as dotenv files. \
                      Prints OP_CONNECT_HOST and OP_CONNECT_TOKEN lines and a command that \
                      changes an item, so you can watch the change arrive. Ctrl-C stops it.",
        after_help = "Examples:\n  opsync demo\n  opsync demo --dir /tmp/opsync-demo --admin-listen 127.0.0.1:9465"
    )]
    Demo(DemoArgs),

    /// Plugins: inspect a component, check the configured ones, scaffold a new one
    #[command(
        long_about = "Tools for plugin authors and operators: `inspect` shows what a component \
                      file is, `check` loads and validates every configured plugin, `new` \
                      scaffolds a Rust destination plugin crate.",
        after_help = "Examples:\n  opsync plugin inspect my-plugin.wasm\n  opsync plugin check\n  opsync plugin new my-destination"
    )]
    Plugin(crate::plugin_cmd::PluginArgs),

    /// Rotation jobs: run one now, or show where each stands
    #[command(
        subcommand,
        after_help = "Examples:\n  opsync rotate status\n  opsync rotate now billing-db"
    )]
    Rotate(RotateCommand),

    /// The state database: copy a SQLite state into PostgreSQL
    #[command(
        subcommand,
        after_help = "Examples:\n  OPSYNC_PG_PASSWORD=... opsync state migrate --from sqlite:./opsync.db \\\n    --to postgres://opsync@db.internal:5432/opsync --password-env OPSYNC_PG_PASSWORD"
    )]
    State(StateCommand),
    /// The audit export: each sink's cursor, lag and last error; replay records from a time
    #[command(
        subcommand,
        long_about = "`opsync run` reads Connect's activity log (/v1/activity) into the state \
                      database and ships it to every [[audit.sink]] through its audit-sink plugin. \
                      `audit status` shows the tail's high-water mark and, per sink, its cursor, \
                      the records waiting and how old the oldest is, what it shipped, what it \
                      refused, and its last error. `audit replay` moves sinks' cursors back so a \
                      running daemon ships the records again (sinks dedupe by request id where \
                      the peer allows it). Both read only the state database.",
        after_help = "Examples:\n  opsync audit status\n  opsync audit replay --since 2h"
    )]
    Audit(AuditCommand),

    /// Print the version, the commit and date it was built from, and the plugin ABI it loads
    #[command(after_help = "Examples:\n  opsync version")]
    Version,

    /// Print a shell completion script for bash, zsh, fish, elvish or powershell
    #[command(after_help = "Examples:\n  \
                  opsync completions bash > /usr/share/bash-completion/completions/opsync\n  \
                  opsync completions zsh > /usr/local/share/zsh/site-functions/_opsync\n  \
                  opsync completions fish > ~/.config/fish/completions/opsync.fish")]
    Completions(CompletionsArgs),

    /// Write the manual pages: opsync(1) and one page per command, in roff
    #[command(after_help = "Examples:\n  \
                  opsync man --out-dir /usr/local/share/man/man1 && mandb\n  \
                  opsync man | man -l -")]
    Man(ManArgs),
}

/// `opsync completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `opsync man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write opsync.1 and opsync-COMMAND.1 for every command into this directory, instead of
    /// printing opsync.1 on stdout
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// `opsync rotate`.
#[derive(Debug, Subcommand)]
pub enum RotateCommand {
    /// Rotate one job now (or resume its rotation in progress) in this process, and wait
    #[command(
        long_about = "Runs the [[rotation]] job JOB now: create, set, test, promote, finish, each \
                      step recorded in the state database. A rotation already in progress (after \
                      a crash) is resumed instead of starting a new one. The job's lease keeps a \
                      running daemon from rotating it at the same time.\n\n\
                      Exit status: 0 when it succeeded; 1 when it failed, rolled back or stalled; \
                      3 when another process is rotating the job.",
        after_help = "Examples:\n  opsync rotate now billing-db"
    )]
    Now {
        /// The job's name (`name` in its [[rotation]])
        job: String,
    },
    /// Per job: schedule, next run, last result, step in progress
    #[command(after_help = "Examples:\n  opsync rotate status")]
    Status,
}

/// `opsync check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub connect: ConnectFlags,

    /// Also contact the Connect server: show its version and resolve vault ids to names
    #[arg(long)]
    pub online: bool,
}

/// `opsync run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub connect: ConnectFlags,

    /// Apply deletions even when they exceed a route's max_delete_ratio
    #[arg(long)]
    pub allow_mass_delete: bool,

    /// Start even when a plugin's component does not match its pinned sha256 (that plugin's
    /// work waits); without it, a pin mismatch stops the command before anything runs
    #[arg(long)]
    pub allow_unusable_plugins: bool,

    /// Serve /metrics, /healthz and /readyz here (overrides admin.listen)
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<std::net::SocketAddr>,
}

/// `opsync once`.
#[derive(Debug, Args)]
pub struct OnceArgs {
    #[command(flatten)]
    pub connect: ConnectFlags,

    /// Apply deletions even when they exceed a route's max_delete_ratio
    #[arg(long)]
    pub allow_mass_delete: bool,

    /// Start even when a plugin's component does not match its pinned sha256 (that plugin's
    /// work waits); without it, a pin mismatch stops the command before anything runs
    #[arg(long)]
    pub allow_unusable_plugins: bool,

    /// No progress bar, even on a terminal
    #[arg(long)]
    pub no_progress: bool,
}

/// `opsync plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub connect: ConnectFlags,
}

/// `opsync deadletter`.
#[derive(Debug, Subcommand)]
pub enum DeadletterCommand {
    /// Show dead letters with their reason, newest first
    #[command(
        after_help = "Examples:\n  opsync deadletter list\n  opsync deadletter list --route prod"
    )]
    List {
        /// Only this route's
        #[arg(long, value_name = "NAME")]
        route: Option<String>,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Queue dead letters again with a fresh retry budget (one by id, a route's, or all)
    #[command(
        group = clap::ArgGroup::new("which").required(true).args(["id", "route", "all"]),
        after_help = "Examples:\n  opsync deadletter retry --id 42\n  opsync deadletter retry --route prod\n  opsync deadletter retry --all"
    )]
    Retry {
        /// The dead letter's id (as `deadletter list` shows it)
        #[arg(long, value_name = "N")]
        id: Option<i64>,
        /// Every dead letter of this route
        #[arg(long, value_name = "NAME")]
        route: Option<String>,
        /// Every dead letter
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        state: StateArgs,
    },
}

/// `opsync state ...`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy a SQLite state (a running daemon's too: one consistent snapshot) into an empty
    /// PostgreSQL database, creating its schema, in one transaction
    #[command(
        long_about = "Reads every table of a SQLite state database in one read transaction (a \
                      daemon may keep writing it meanwhile) and writes it into a PostgreSQL \
                      database in one transaction: the schema is created or brought up to date \
                      first, the target must hold no state yet, and the row counts are checked \
                      before the commit. The URL never holds the password: --password-env or \
                      --password-file names where it is. TLS is on and verified unless the URL \
                      says sslmode=disable; sslrootcert=FILE adds CAs to trust.",
        after_help = "Examples:\n  opsync state migrate --from sqlite:./opsync.db \\\n    --to 'postgres://opsync@db.internal/opsync?sslrootcert=/etc/opsync/pg-ca.pem' \\\n    --password-file /run/secrets/pg-password"
    )]
    Migrate(StateMigrateArgs),
}

/// `opsync state migrate` flags.
#[derive(Debug, Args)]
pub struct StateMigrateArgs {
    /// The SQLite state to copy: sqlite:PATH (or a plain path)
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// The PostgreSQL database to copy into: postgres://USER@HOST[:PORT]/DATABASE[?sslmode=...]
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Read the PostgreSQL password from this environment variable
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,
    /// Read the PostgreSQL password from this file
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
}

impl StateMigrateArgs {
    /// The SQLite path of `--from`.
    pub fn sqlite_path(&self) -> PathBuf {
        PathBuf::from(self.from.strip_prefix("sqlite:").unwrap_or(&self.from))
    }

    /// Where `--to`'s password comes from.
    pub fn password(&self) -> crate::store::postgres::PasswordSource {
        use crate::store::postgres::PasswordSource;
        match (&self.password_env, &self.password_file) {
            (Some(var), _) => PasswordSource::Env(var.clone()),
            (None, Some(path)) => PasswordSource::File(path.clone()),
            (None, None) => PasswordSource::None,
        }
    }
}

/// `opsync status` flags.
#[derive(Debug, Default, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Print the status document (JSON, schema opsync.status/v1) instead of the table
    #[arg(long)]
    pub json: bool,
}

/// For commands that read only the state database (`status`, `deadletter`).
#[derive(Debug, Default, Args)]
pub struct StateArgs {
    /// The state database (overrides [state] path); no Connect settings are needed
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
}

impl StateArgs {
    /// `local` with `--state` applied.
    pub fn apply(&self, mut local: crate::config::LocalSettings) -> crate::config::LocalSettings {
        if let Some(path) = &self.state {
            local.state.path = path.clone();
        }
        local
    }
}

/// `opsync audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Per sink: cursor, records pending, lag, shipped, dead letters and the last error
    #[command(after_help = "Examples:\n  opsync audit status")]
    Status,
    /// Ship again every record (still kept) logged at or after a time, or read a window of an
    /// Events API stream again
    #[command(after_help = "Examples:\n  opsync audit replay --since 2h\n  \
                            opsync audit replay --since 2026-01-02T00:00:00Z --sink siem\n  \
                            opsync audit replay --stream auditevents --since 2026-11-01")]
    Replay {
        /// An RFC 3339 time or date, or a duration ago (30m, 2h, 7d)
        #[arg(long, value_name = "TIME|DURATION")]
        since: String,
        /// With --stream: the window's end [default: now]
        #[arg(long, value_name = "TIME|DURATION", requires = "stream")]
        until: Option<String>,
        /// Read this Events API stream (auditevents, itemusages, signinattempts) again from the
        /// API, which keeps 120 days, instead of the records kept in the state database
        #[arg(long, value_name = "STREAM")]
        stream: Option<String>,
        /// Only this sink (repeatable) [default: every sink]
        #[arg(long = "sink", value_name = "NAME")]
        sinks: Vec<String>,
    },
}

/// `opsync demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The demo directory: config, state, and the delivered files under DIR/files/
    #[arg(long, value_name = "DIR", default_value = "opsync-demo")]
    pub dir: PathBuf,

    /// Where the demo Connect server listens
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,

    /// Where /metrics, /healthz and /readyz are served
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub admin_listen: std::net::SocketAddr,
}

/// Flags for commands that talk to Connect.
#[derive(Debug, Default, Args)]
pub struct ConnectFlags {
    /// Connect server URL (overrides connect.host, OPSYNC_CONNECT__HOST and OP_CONNECT_HOST)
    #[arg(long, value_name = "URL")]
    pub connect_host: Option<String>,

    /// Read the Connect token from this file (overrides connect.token and connect.token_file)
    #[arg(long, value_name = "PATH")]
    pub connect_token_file: Option<PathBuf>,
}

impl Cli {
    /// How to load the configuration, given this command line and the process environment.
    pub fn load_options(&self) -> LoadOptions {
        let connect = match &self.command {
            Command::CheckConfig(args) => Some(&args.connect),
            Command::Run(args) => Some(&args.connect),
            Command::Once(args) => Some(&args.connect),
            Command::Plan(args) => Some(&args.connect),
            Command::ConnectDev(_)
            | Command::Status(_)
            | Command::Deadletter(_)
            | Command::Audit(_)
            | Command::Demo(_)
            | Command::Plugin(_)
            | Command::Rotate(_)
            | Command::State(_)
            | Command::Version
            | Command::Completions(_)
            | Command::Man(_) => None,
        };
        LoadOptions::new(
            self.config.clone(),
            Overrides {
                connect_host: connect.and_then(|c| c.connect_host.clone()),
                connect_token_file: connect.and_then(|c| c.connect_token_file.clone()),
                log_level: self.log_level.clone(),
                log_format: self.log_format.clone(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_command_shows_an_example() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in command.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                let help = sub.get_after_help().map(|h| h.to_string());
                if !help.is_some_and(|h| h.contains("opsync ") && h.contains(sub.get_name())) {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "opsync", &mut missing);
        assert!(
            missing.is_empty(),
            "no example in the --help of {missing:?}"
        );
    }

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
