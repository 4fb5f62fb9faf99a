//! `opsync once`: one detect-and-deliver cycle; the exit status says whether anything failed
//! (1) or only deletions are held (2).

use std::io::IsTerminal as _;
use std::process::ExitCode;

use opsync::app::OnceOptions;
use opsync::cli::OnceArgs;
use opsync::config::Loader;

use crate::commands::runtime;

pub fn run(loader: &Loader, args: &OnceArgs) -> anyhow::Result<ExitCode> {
    let settings = loader.settings()?;
    let options = OnceOptions {
        allow_mass_delete: args.allow_mass_delete,
        allow_unusable_plugins: args.allow_unusable_plugins,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
    };
    let summary = runtime::new()?.block_on(opsync::app::once(settings, options))?;
    print!("{}", summary.text());
    Ok(ExitCode::from(summary.exit_code()))
}
