//! `opsync rotate now|status`: one rotation now (exit 3 when another process holds the job), or
//! the per-job table.

use std::process::ExitCode;

use opsync::cli::RotateCommand;
use opsync::config::Loader;
use opsync::rotation::Outcome;

use crate::commands::runtime;

pub fn run(loader: &Loader, command: RotateCommand) -> anyhow::Result<ExitCode> {
    match command {
        RotateCommand::Now { job } => {
            let settings = loader.settings()?;
            let outcome = runtime::new()?.block_on(opsync::app::rotate_now(settings, &job))?;
            print!("{}", opsync::app::outcome_text(&job, &outcome));
            Ok(ExitCode::from(match outcome {
                Outcome::Succeeded | Outcome::Idle => 0,
                Outcome::Busy => 3,
                _ => 1,
            }))
        }
        RotateCommand::Status => {
            let text = opsync::app::rotate_status(&loader.settings()?, chrono::Utc::now())?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
