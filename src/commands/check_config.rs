//! `opsync check-config`: the effective settings, redacted, and what the token grants; warnings
//! and errors on stderr, exit 1 when the configuration will not work.

use std::io::Write as _;
use std::process::ExitCode;

use opsync::cli::CheckConfigArgs;
use opsync::config::Loader;

use crate::commands::runtime;

pub fn run(loader: &Loader, args: &CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let settings = loader.settings()?;
    let report = runtime::new()?.block_on(opsync::config::check(
        &settings,
        args.online,
        chrono::Utc::now(),
    ));
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.text.as_bytes())?;
    stdout.flush()?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("error: {error}");
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
