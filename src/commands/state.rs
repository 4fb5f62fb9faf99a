//! `opsync state migrate`: a SQLite state copied into PostgreSQL.

use std::process::ExitCode;

use anyhow::Context as _;
use opsync::cli::StateCommand;
use opsync::store::Store;
use opsync::store::postgres::{PgTarget, copy_state};

pub fn run(command: StateCommand) -> anyhow::Result<ExitCode> {
    match command {
        StateCommand::Migrate(args) => {
            let path = args.sqlite_path();
            if !path.is_file() {
                anyhow::bail!("--from {}: no such SQLite state database", path.display());
            }
            let target = PgTarget::parse("--to", &args.to, &args.password())?;
            let source = Store::open(&path)?;
            let copied = super::runtime::new()?
                .block_on(copy_state(&source, &target))
                .with_context(|| format!("copying {} into {target}", path.display()))?;
            for (table, rows) in &copied.tables {
                println!("{table:<14} {rows:>9} rows");
            }
            println!(
                "copied {} rows in {} tables from sqlite:{} to {target}",
                copied.rows(),
                copied.tables.len(),
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
