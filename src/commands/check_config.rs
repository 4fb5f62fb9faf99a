//! `opsync check-config`: the effective settings, redacted, and what the token grants; then the
//! warnings and errors (stderr), then a one-line verdict; exit 1 when the configuration will not
//! work.

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
    writeln!(
        stdout,
        "{}",
        verdict(report.errors.len(), report.warnings.len())
    )?;
    stdout.flush()?;
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The last line: usable or not, and how many errors and warnings are above it.
fn verdict(errors: usize, warnings: usize) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "verdict: usable".to_owned(),
        (0, w) => format!("verdict: usable, with {} (above)", count(w, "warning")),
        (e, _) => format!("verdict: NOT usable: {} (above)", count(e, "error")),
    }
}
