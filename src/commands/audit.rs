//! `opsync audit status|replay`: the export's cursors and lag, sinks' cursors moved back, or a
//! window of an Events API stream read again.

use std::process::ExitCode;

use opsync::cli::AuditCommand;
use opsync::config::Loader;

pub fn run(loader: &Loader, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let text = match command {
        AuditCommand::Status => opsync::audit::status(&loader.settings()?, now)?,
        AuditCommand::Replay {
            since,
            until,
            stream: Some(stream),
            sinks,
        } => {
            let since = opsync::audit::parse_since(&since, now)?;
            let until = match until {
                Some(until) => opsync::audit::parse_since(&until, now)?,
                None => now,
            };
            opsync::audit::replay_stream(&loader.settings()?, &stream, since, until, &sinks)?
        }
        AuditCommand::Replay {
            since,
            stream: None,
            sinks,
            ..
        } => {
            let since = opsync::audit::parse_since(&since, now)?;
            opsync::audit::replay(&loader.settings()?, since, &sinks)?
        }
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
