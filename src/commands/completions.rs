//! `opsync completions SHELL`: the shell completion script, generated from the command line's
//! own definition (clap_complete), so it never falls behind a new flag.

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;
use opsync::cli::{Cli, CompletionsArgs};

/// Generates the script into memory first: clap_complete panics when its writer fails, and
/// stdout fails whenever the reader stops early (`opsync completions bash | head`).
pub fn run(args: &CompletionsArgs) -> ExitCode {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "opsync", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opsync completions: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
