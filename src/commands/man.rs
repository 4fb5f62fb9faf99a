//! `opsync man`: manual pages in roff, generated from the command line's own definition
//! (clap_mangen): opsync(1) on stdout, or opsync(1) and opsync-COMMAND(1) for every command,
//! nested ones included, into a directory.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;
use opsync::cli::{Cli, ManArgs};

pub fn run(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    match &args.out_dir {
        None => {
            clap_mangen::Man::new(command)
                .render(&mut std::io::stdout())
                .context("writing the manual page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            write_pages(dir, command)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `command`'s page, then its subcommands' pages named `parent-child`.
fn write_pages(dir: &Path, command: clap::Command) -> anyhow::Result<()> {
    let name = command.get_name().to_owned();
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .with_context(|| format!("rendering {name}(1)"))?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let child = format!("{name}-{}", sub.get_name());
        write_pages(dir, sub.clone().name(child))?;
    }
    Ok(())
}
