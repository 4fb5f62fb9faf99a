//! `opsync status`: the per-route table, or with `--json` the status document, from the
//! config and the state database (never from Connect).

use std::process::ExitCode;

use opsync::cli::StatusArgs;
use opsync::config::Loader;

pub fn run(loader: &Loader, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    if args.json {
        let mut settings = loader.offline_settings()?;
        if let Some(path) = &args.state.state {
            settings.state.path = path.clone();
        }
        print!("{}", opsync::app::status_json(&settings, now)?);
    } else {
        let local = args.state.apply(loader.local()?);
        print!("{}", opsync::app::status(&local, now)?);
    }
    Ok(ExitCode::SUCCESS)
}
