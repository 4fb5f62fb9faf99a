//! One file per command, each a thin shell over the library: build the command's options from
//! its flags and the settings, run it, print what it returns, and choose the exit status.

mod audit;
mod check_config;
mod completions;
mod connect_dev;
mod deadletter;
mod demo;
mod logging;
mod man;
mod once;
mod plan;
mod plugin;
mod rotate;
mod run;
mod runtime;
mod state;
mod status;
mod version;

use std::process::ExitCode;

use opsync::cli::{Cli, Command};
use opsync::config::Loader;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // What needs no configuration runs before it is loaded (a broken config must not matter).
    match cli.command {
        Command::Version => return Ok(version::run()),
        Command::Completions(args) => return Ok(completions::run(&args)),
        Command::Man(args) => return man::run(&args),
        _ => {}
    }
    let loader = Loader::new(&cli.load_options())?;
    logging::init(&loader.log()?)?;
    match cli.command {
        Command::Version | Command::Completions(_) | Command::Man(_) => Ok(ExitCode::SUCCESS),
        Command::CheckConfig(args) => check_config::run(&loader, &args),
        Command::ConnectDev(args) => connect_dev::run(*args),
        Command::Run(args) => run::run(&loader, &args),
        Command::Once(args) => once::run(&loader, &args),
        Command::Plan(_) => plan::run(&loader),
        Command::Status(args) => status::run(&loader, args),
        Command::Deadletter(command) => deadletter::run(&loader, command),
        Command::Audit(command) => audit::run(&loader, command),
        Command::Plugin(args) => plugin::run(&loader, args),
        Command::Rotate(command) => rotate::run(&loader, command),
        Command::State(command) => state::run(command),
        Command::Demo(args) => demo::run(args),
    }
}
