//! The `opsync` binary: parses the command line and runs the chosen command.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use opsync::cli::{
    AuditCommand, CheckConfigArgs, Cli, Command, DeadletterCommand, RotateCommand, version_text,
};
use opsync::config::{LogFormat, LogSettings, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Version = cli.command {
        print!("{}", version_text());
        return Ok(ExitCode::SUCCESS);
    }
    let loader = opsync::config::Loader::new(&cli.load_options())?;
    init_logging(&loader.log()?)?;
    match cli.command {
        Command::Version => Ok(ExitCode::SUCCESS),
        Command::CheckConfig(args) => check_config(&loader.settings()?, &args),
        Command::ConnectDev(args) => {
            runtime()?.block_on(opsync::connect_dev::cli::run(*args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let settings = loader.settings()?;
            let options = opsync::app::RunOptions {
                allow_mass_delete: args.allow_mass_delete,
                allow_unusable_plugins: args.allow_unusable_plugins,
                admin_listen: args.admin_listen,
                on_admin: None,
            };
            runtime()?.block_on(async {
                let shutdown = on_signals();
                opsync::app::run(settings, options, shutdown).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Once(args) => {
            let settings = loader.settings()?;
            let options = opsync::app::OnceOptions {
                allow_mass_delete: args.allow_mass_delete,
                allow_unusable_plugins: args.allow_unusable_plugins,
                progress: !args.no_progress && std::io::stderr().is_terminal(),
            };
            let summary = runtime()?.block_on(opsync::app::once(settings, options))?;
            print!("{}", summary.text());
            Ok(ExitCode::from(summary.exit_code()))
        }
        Command::Plan(_) => {
            let plan = runtime()?.block_on(opsync::app::plan(loader.settings()?))?;
            print!("{}", plan.text);
            Ok(ExitCode::from(if plan.has_changes() { 2 } else { 0 }))
        }
        Command::Status(args) => {
            let local = args.apply(loader.local()?);
            print!("{}", opsync::app::status(&local, chrono::Utc::now())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Deadletter(DeadletterCommand::List { route, state }) => {
            let local = state.apply(loader.local()?);
            print!("{}", opsync::app::dead_letters(&local, route.as_deref())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Deadletter(DeadletterCommand::Retry {
            id,
            route,
            all: _,
            state,
        }) => {
            let local = state.apply(loader.local()?);
            let n = opsync::app::retry_dead_letters(&local, route.as_deref(), id)?;
            println!(
                "{n} dead letters queued again; a running daemon delivers them within seconds, or run `opsync once`"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Status) => {
            print!(
                "{}",
                opsync::audit::status(&loader.settings()?, chrono::Utc::now())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Replay { since, sinks }) => {
            let since = opsync::audit::parse_since(&since, chrono::Utc::now())?;
            print!(
                "{}",
                opsync::audit::replay(&loader.settings()?, since, &sinks)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(args) => {
            let mut stdout = std::io::stdout().lock();
            let verdict =
                runtime()?.block_on(opsync::plugin_cmd::run(args, &loader, &mut stdout))?;
            stdout.flush()?;
            Ok(ExitCode::from(verdict.exit_code()))
        }
        Command::Rotate(RotateCommand::Now { job }) => {
            let settings = loader.settings()?;
            let outcome = runtime()?.block_on(opsync::app::rotate_now(settings, &job))?;
            print!("{}", opsync::app::outcome_text(&job, &outcome));
            Ok(ExitCode::from(match outcome {
                opsync::rotation::Outcome::Succeeded | opsync::rotation::Outcome::Idle => 0,
                opsync::rotation::Outcome::Busy => 3,
                _ => 1,
            }))
        }
        Command::Rotate(RotateCommand::Status) => {
            print!(
                "{}",
                opsync::app::rotate_status(&loader.settings()?, chrono::Utc::now())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            let options = opsync::app::DemoOptions {
                dir: args.dir,
                listen: args.listen,
                admin_listen: args.admin_listen,
            };
            runtime()?.block_on(async {
                let shutdown = on_signals();
                opsync::app::demo(options, shutdown).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A shutdown signal that SIGTERM or SIGINT triggers; a second one exits at once.
fn on_signals() -> opsync::shutdown::Shutdown {
    let (trigger, shutdown) = opsync::shutdown::channel();
    tokio::spawn(async move {
        if trigger.on_signals().await.is_err() {
            return;
        }
        if trigger.on_signals().await.is_ok() {
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        }
    });
    shutdown
}

fn check_config(settings: &Settings, args: &CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let report = runtime()?.block_on(opsync::config::check(
        settings,
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
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Logs go to stderr, as text for people or JSON for collectors.
fn init_logging(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .parse(settings.level.as_str())
        .with_context(|| format!("log.level {:?}", settings.level.as_str()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}
