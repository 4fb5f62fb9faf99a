//! `opsync plan`: the dry run; exit 2 when there are changes or held deletions.

use std::process::ExitCode;

use opsync::config::Loader;

use crate::commands::runtime;

pub fn run(loader: &Loader) -> anyhow::Result<ExitCode> {
    let plan = runtime::new()?.block_on(opsync::app::plan(loader.settings()?))?;
    print!("{}", plan.text);
    Ok(ExitCode::from(if plan.has_changes() { 2 } else { 0 }))
}
