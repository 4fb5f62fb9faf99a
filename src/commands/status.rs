//! `opsync status`: the per-route table, from the state database alone.

use std::process::ExitCode;

use opsync::cli::StateArgs;
use opsync::config::Loader;

pub fn run(loader: &Loader, args: StateArgs) -> anyhow::Result<ExitCode> {
    let local = args.apply(loader.local()?);
    print!("{}", opsync::app::status(&local, chrono::Utc::now())?);
    Ok(ExitCode::SUCCESS)
}
