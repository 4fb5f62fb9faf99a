//! The `opsync plugin` commands: `inspect` a component, `check` the configured plugins, scaffold a
//! `new` plugin crate.

mod check;
mod scaffold;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use check::{CheckError, CheckReport, PluginStatus, check};
pub use scaffold::{Scaffold, ScaffoldError, scaffold};

use crate::config::{ConfigError, Loader};
use crate::plugin::{HostOptions, PluginError, PluginHost, Report, inspect};

/// `opsync plugin`.
#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// The `plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Show what a component file is: world and ABI version, imports, exports, size, sha256
    #[command(
        long_about = "Reads and compiles (never runs) a WebAssembly component and prints its \
                      plugin world and ABI version, its imports and exports, its size and the \
                      sha256 to pin in [plugins.NAME].\n\nExit status: 0 when it is a plugin this \
                      opsync can run, 1 when it is not.",
        after_help = "Example:\n  opsync plugin inspect target/wasm32-wasip2/release/my_plugin.wasm"
    )]
    Inspect {
        /// The component (.wasm) to inspect
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },

    /// Load every configured plugin, resolve its op:// config values and validate it
    #[command(
        long_about = "For every [plugins.NAME] section: resolves its op:// config values through \
                      Connect, loads the component (a file's pinned sha256 is checked), and calls \
                      the plugin's validate. Prints one line per plugin: its name, source, world, \
                      sha256, allowed HTTP hosts, and OK or the error.\n\nExit status: 0 when every \
                      plugin is usable, 1 when any is not.",
        after_help = "Example:\n  opsync --config /etc/opsync/config.toml plugin check"
    )]
    Check,

    /// Scaffold a Rust destination plugin crate in a new folder
    #[command(
        long_about = "Writes a standalone Rust crate into the new folder DIR (its last component \
                      names the crate): a destination plugin skeleton that logs and returns a \
                      receipt, a unit test of its logic, and a copy of the plugin ABI's WIT. It \
                      builds with `cargo build --release --target wasm32-wasip2`.",
        after_help = "Example:\n  opsync plugin new my-destination && cd my-destination && cargo test"
    )]
    New {
        /// The folder to create; its name is the crate's name
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// How a `plugin` command ended, for the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything looked at is usable.
    Usable,
    /// Something is not (the output says what).
    Unusable,
}

impl Verdict {
    /// 0 or 1.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Usable => 0,
            Self::Unusable => 1,
        }
    }
}

/// Why a `plugin` command could not run.
#[derive(Debug, thiserror::Error)]
pub enum PluginCmdError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Inspect(#[from] PluginError),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Scaffold(#[from] ScaffoldError),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs one `plugin` subcommand, printing to `out`; `check` reads the settings from `loader`.
pub async fn run(
    args: PluginArgs,
    loader: &Loader,
    out: &mut impl Write,
) -> Result<Verdict, PluginCmdError> {
    match args.command {
        PluginCommand::Inspect { file } => {
            // Compiling blocks this thread for a moment; nothing else runs beside it.
            let host = PluginHost::new(HostOptions::default())?;
            let report: Report = inspect(&host, &file)?;
            write!(out, "{report}")?;
            Ok(if report.problem.is_none() {
                Verdict::Usable
            } else {
                Verdict::Unusable
            })
        }
        PluginCommand::Check => {
            let report = check(&loader.settings()?).await?;
            write!(out, "{report}")?;
            Ok(if report.failed() {
                Verdict::Unusable
            } else {
                Verdict::Usable
            })
        }
        PluginCommand::New { dir } => {
            let s = scaffold(&dir)?;
            writeln!(out, "created {} ({} files)", s.dir.display(), s.files.len())?;
            writeln!(
                out,
                "build it:  cd {} && cargo build --release --target wasm32-wasip2 && cargo test",
                s.dir.display()
            )?;
            writeln!(
                out,
                "then:      opsync plugin inspect {}",
                s.dir.join(&s.wasm).display()
            )?;
            Ok(Verdict::Usable)
        }
    }
}
