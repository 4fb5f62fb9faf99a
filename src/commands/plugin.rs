//! `opsync plugin inspect|check|new`: exit 1 when what was looked at is not usable.

use std::io::Write as _;
use std::process::ExitCode;

use opsync::config::Loader;
use opsync::plugin_cmd::PluginArgs;

use crate::commands::runtime;

pub fn run(loader: &Loader, args: PluginArgs) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let verdict = runtime::new()?.block_on(opsync::plugin_cmd::run(args, loader, &mut stdout))?;
    stdout.flush()?;
    Ok(ExitCode::from(verdict.exit_code()))
}
