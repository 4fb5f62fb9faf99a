//! The `opsync connect-dev` command line: run a server, or mint a token for one (`connect-dev token`, `--events` for the fake Events API).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::connect::model::ErrorBody;
use crate::connect::token::Access;

use super::{
    DevServer, DevServerError, DevServerOptions, EVENTS_TOKENS_PATH, EventsOptions,
    EventsTokenRequest, GrantRequest, RateLimit, Seed, Stream, TokenRequest, TokenResponse,
};

const AFTER_HELP: &str = "\
Examples:
  eval \"$(opsync connect-dev --listen 127.0.0.1:8080 --seed demo)\" &   # prints OP_CONNECT_HOST/TOKEN
  opsync connect-dev --state connect-dev.json --seed bulk:10x1000
  opsync connect-dev --latency 200ms --fail-rate 0.1                   # for fault tests
  opsync connect-dev --events-seed 100000 --events-429-rate 0.2        # fake Events API
  opsync connect-dev token --state connect-dev.json --vault Production:r
  OP_CONNECT_TOKEN=... opsync connect-dev token --host http://127.0.0.1:8080 --vault Staging:rw --expires-in 1h
  OP_CONNECT_TOKEN=... opsync connect-dev token --events --host http://127.0.0.1:8080";

/// `opsync connect-dev`: a local Connect-compatible server.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct ConnectDevArgs {
    #[command(subcommand)]
    pub command: Option<ConnectDevCommand>,

    /// Address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Data for a new state: demo, empty, or bulk:VAULTSxITEMS (e.g. bulk:10x1000)
    #[arg(long, default_value = "demo", value_name = "SEED")]
    pub seed: Seed,

    /// JSON state file, kept across restarts (holds the signing key and every secret; mode 0600)
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Delay added to every /v1 response, e.g. 50ms
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub latency: Duration,

    /// Share of /v1 requests answered 500, between 0 and 1
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "RATE")]
    pub fail_rate: f64,

    /// Synthetic activity records to start with (unique request ids, 100 per millisecond), for
    /// audit export tests and benchmarks
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed_activity: usize,

    /// Synthetic records per Events API stream to start with, spread over the last 7 days
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub events_seed: usize,

    /// Share of Events API requests answered 429 Too Many Requests, between 0 and 1
    #[arg(long = "events-429-rate", default_value_t = 0.0, value_parser = parse_rate, value_name = "RATE")]
    pub events_too_many_rate: f64,

    /// Retry-After of those 429 answers (rounded up to whole seconds, at least 1s)
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub events_retry_after: Duration,

    /// Per-token Events API budget answered with 429 when spent: N/min, N/hour, both
    /// (600/min,30000/hour), or `published` for the real API's limits [default: none]
    #[arg(long, value_name = "LIMIT")]
    pub events_rate_limit: Option<RateLimit>,

    /// Print only the OP_CONNECT_* lines (no hints on stderr)
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConnectDevCommand {
    /// Mint a Connect token (or, with --events, an Events API token) for a running or persisted
    /// connect-dev server; prints just the token
    #[command(
        after_help = "Examples:\n  opsync connect-dev token --host http://127.0.0.1:8080 --vault Production:r\n  \
                      opsync connect-dev token --state connect-dev.json --vault '*:rw' --expires-in 1h\n  \
                      opsync connect-dev token --events --features auditevents,signinattempts --state connect-dev.json"
    )]
    Token(TokenArgs),
}

/// `opsync connect-dev token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// A vault and the access to grant: NAME:r or NAME:rw (NAME may be a vault id, or * for all); repeatable
    #[arg(
        long = "vault",
        required_unless_present = "events",
        conflicts_with = "events",
        value_name = "NAME:r|rw",
        value_parser = parse_grant
    )]
    pub vaults: Vec<(String, Access)>,

    /// Mint a token for the fake Events API instead of a Connect token
    #[arg(long)]
    pub events: bool,

    /// The Events API features (streams) the token opens, comma-separated [default: all three]
    #[arg(
        long,
        requires = "events",
        value_delimiter = ',',
        value_name = "auditevents,itemusages,signinattempts"
    )]
    pub features: Vec<Stream>,

    /// Lifetime of the token, e.g. 30d or 1h [default: no expiry]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub expires_in: Option<Duration>,

    /// Sign with the key in this state file (the server may be running or not)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "host",
        required_unless_present = "host"
    )]
    pub state: Option<PathBuf>,

    /// Ask this running server, e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL")]
    pub host: Option<url::Url>,

    /// The Connect token authorising --host (ignored with --state); its grants bound what can be minted
    #[arg(
        long,
        env = "OP_CONNECT_TOKEN",
        hide_env_values = true,
        value_name = "JWT"
    )]
    pub token: Option<String>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

/// `NAME:r` or `NAME:rw`; the name may itself contain colons.
fn parse_grant(s: &str) -> Result<(String, Access), String> {
    let (name, access) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' should be NAME:r or NAME:rw"))?;
    let access = match access {
        "r" => Access::Read,
        "rw" => Access::ReadWrite,
        other => return Err(format!("access '{other}' should be r or rw")),
    };
    if name.is_empty() {
        return Err(format!("'{s}' has no vault name"));
    }
    Ok((name.to_owned(), access))
}

/// Runs `opsync connect-dev ...`.
pub async fn run(args: ConnectDevArgs) -> Result<(), DevServerError> {
    if let Some(ConnectDevCommand::Token(token_args)) = args.command {
        let token = mint_token(token_args).await?;
        print_lines(&[token])?;
        return Ok(());
    }
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "connect-dev is listening beyond this machine");
    }
    let server = DevServer::start(DevServerOptions {
        listen: args.listen,
        seed: args.seed,
        state: args.state.clone(),
        latency: args.latency,
        fail_rate: args.fail_rate,
        events: EventsOptions {
            seed: args.events_seed,
            too_many_requests_rate: args.events_too_many_rate,
            retry_after: args.events_retry_after,
            rate_limit: args.events_rate_limit,
            ..EventsOptions::default()
        },
    })
    .await?;
    if args.seed_activity > 0 {
        server.seed_activity(args.seed_activity, 100);
    }
    print_lines(&[
        format!("OP_CONNECT_HOST={}", server.base_url()),
        format!("OP_CONNECT_TOKEN={}", server.token()),
    ])?;
    if !args.quiet {
        eprintln!(
            "connect-dev: serving {} (Connect {}); stop with Ctrl-C{}",
            server.base_url(),
            super::CONNECT_VERSION,
            args.state
                .as_ref()
                .map(|p| format!("; state in {}", p.display()))
                .unwrap_or_default()
        );
        eprintln!(
            "connect-dev: a fake Events API answers at {}/api/v2/...; mint its tokens with \
             `opsync connect-dev token --events --host {}`",
            server.base_url(),
            server.base_url()
        );
    }
    wait_for_signal().await;
    server.shutdown().await;
    Ok(())
}

fn print_lines(lines: &[String]) -> Result<(), DevServerError> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}").map_err(DevServerError::Serve)?;
    }
    out.flush().map_err(DevServerError::Serve)
}

/// The token `opsync connect-dev token` prints.
pub async fn mint_token(args: TokenArgs) -> Result<String, DevServerError> {
    let features = if args.features.is_empty() {
        Stream::ALL.to_vec()
    } else {
        args.features.clone()
    };
    if let Some(path) = &args.state {
        return if args.events {
            super::mint_events_from_state(path, &features, args.expires_in)
        } else {
            super::mint_from_state(path, &args.vaults, args.expires_in)
        };
    }
    let Some(host) = args.host else {
        return Err(DevServerError::InvalidArgument(
            "give --state FILE or --host URL".to_owned(),
        ));
    };
    let token = args.token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        DevServerError::InvalidArgument(
            "--host needs a token: --token JWT or OP_CONNECT_TOKEN".to_owned(),
        )
    })?;
    let expires_in_seconds = args.expires_in.map(|d| d.as_secs());
    let (path, body) = if args.events {
        let request = EventsTokenRequest {
            features: features.iter().map(|f| f.name().to_owned()).collect(),
            expires_in_seconds,
        };
        (EVENTS_TOKENS_PATH, serde_json::to_value(request))
    } else {
        let request = TokenRequest {
            vaults: args
                .vaults
                .iter()
                .map(|(vault, access)| GrantRequest {
                    vault: vault.clone(),
                    access: *access,
                })
                .collect(),
            expires_in_seconds,
        };
        (super::dev_tokens::PATH, serde_json::to_value(request))
    };
    let remote = |message: String| DevServerError::Remote {
        host: host.to_string(),
        message,
    };
    let body = body.map_err(|e| remote(e.to_string()))?;
    let url = host.join(path).map_err(|e| remote(e.to_string()))?;
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token.trim())
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| remote(e.without_url().to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| remote(e.without_url().to_string()))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .map(|e| e.message)
            .unwrap_or_else(|_| status.to_string());
        return Err(remote(format!("{} {message}", status.as_u16())));
    }
    serde_json::from_slice::<TokenResponse>(&body)
        .map(|r| r.token)
        .map_err(|e| remote(format!("unexpected answer: {e}")))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse() {
        assert_eq!(
            parse_grant("Production:r"),
            Ok(("Production".into(), Access::Read))
        );
        assert_eq!(parse_grant("a:b:rw"), Ok(("a:b".into(), Access::ReadWrite)));
        assert!(parse_grant("Production").is_err());
        assert!(parse_grant("Production:w").is_err());
        assert!(parse_grant(":r").is_err());
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("x").is_err());
    }
}
