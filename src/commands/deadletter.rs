//! `opsync deadletter list|retry`: dead letters with their reasons, or queued again.

use std::process::ExitCode;

use opsync::cli::DeadletterCommand;
use opsync::config::Loader;

pub fn run(loader: &Loader, command: DeadletterCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeadletterCommand::List { route, state } => {
            let local = state.apply(loader.local()?);
            print!("{}", opsync::app::dead_letters(&local, route.as_deref())?);
        }
        DeadletterCommand::Retry {
            id,
            route,
            all: _,
            state,
        } => {
            let local = state.apply(loader.local()?);
            let n = opsync::app::retry_dead_letters(&local, route.as_deref(), id)?;
            println!(
                "{n} dead letters queued again; a running daemon delivers them within seconds, or run `opsync once`"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
