//! `opsync audit status|replay`: the export's cursors and lag, or sinks' cursors moved back.

use std::process::ExitCode;

use opsync::cli::AuditCommand;
use opsync::config::Loader;

pub fn run(loader: &Loader, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let text = match command {
        AuditCommand::Status => opsync::audit::status(&loader.settings()?, now)?,
        AuditCommand::Replay { since, sinks } => {
            let since = opsync::audit::parse_since(&since, now)?;
            opsync::audit::replay(&loader.settings()?, since, &sinks)?
        }
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
