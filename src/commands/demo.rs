//! `opsync demo`: the embedded Connect server with demo data plus the daemon, until Ctrl-C.

use std::process::ExitCode;

use opsync::app::DemoOptions;
use opsync::cli::DemoArgs;

use crate::commands::runtime;

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let options = DemoOptions {
        dir: args.dir,
        listen: args.listen,
        admin_listen: args.admin_listen,
        metrics: Some(opsync::telemetry::install()?),
    };
    runtime::new()?.block_on(async {
        let shutdown = runtime::on_signals();
        opsync::app::demo(options, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}
