//! The `opsync` binary: parses the command line and runs the chosen command.

fn main() -> anyhow::Result<()> {
    Ok(())
}
