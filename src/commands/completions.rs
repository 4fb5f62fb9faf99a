//! `opsync completions SHELL`: the shell completion script, generated from the command line's
//! own definition (clap_complete), so it never falls behind a new flag.

use std::process::ExitCode;

use clap::CommandFactory as _;
use opsync::cli::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> ExitCode {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "opsync", &mut std::io::stdout());
    ExitCode::SUCCESS
}
