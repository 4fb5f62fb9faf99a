//! `opsync connect-dev`: the embedded Connect-compatible server, or one of its subcommands.

use std::process::ExitCode;

use opsync::connect_dev::cli::ConnectDevArgs;

use crate::commands::runtime;

pub fn run(args: ConnectDevArgs) -> anyhow::Result<ExitCode> {
    runtime::new()?.block_on(opsync::connect_dev::cli::run(args))?;
    Ok(ExitCode::SUCCESS)
}
