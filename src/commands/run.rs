//! `opsync run`: the daemon, until SIGTERM or SIGINT.

use std::process::ExitCode;

use opsync::app::RunOptions;
use opsync::cli::RunArgs;
use opsync::config::Loader;

use crate::commands::runtime;

pub fn run(loader: &Loader, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let settings = loader.settings()?;
    let options = RunOptions {
        allow_mass_delete: args.allow_mass_delete,
        allow_unusable_plugins: args.allow_unusable_plugins,
        admin_listen: args.admin_listen,
        on_admin: None,
        metrics: Some(opsync::telemetry::install()?),
    };
    runtime::new()?.block_on(async {
        let shutdown = runtime::on_signals();
        opsync::app::run(settings, options, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}
