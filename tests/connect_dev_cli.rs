//! The `opsync connect-dev` command line: argument parsing and `connect-dev token` by state file and by host.

use clap::Parser;
use reqwest::StatusCode;

use opsync::connect::token::{Access, decode_unverified};
use opsync::connect_dev::cli::{ConnectDevArgs, ConnectDevCommand, TokenArgs, mint_token};
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: ConnectDevArgs,
}

fn parse(argv: &[&str]) -> Result<ConnectDevArgs, clap::Error> {
    Wrapper::try_parse_from(std::iter::once("connect-dev").chain(argv.iter().copied()))
        .map(|w| w.args)
}

fn token_args(argv: &[&str]) -> TokenArgs {
    match parse(argv).expect("parses").command {
        Some(ConnectDevCommand::Token(args)) => args,
        None => panic!("not the token subcommand"),
    }
}

#[test]
fn server_flags() {
    let args = parse(&[]).expect("defaults");
    assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(args.seed, Seed::Demo);
    assert!(args.command.is_none());
    let args = parse(&[
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "bulk:2x5",
        "--latency",
        "25ms",
        "--fail-rate",
        "0.5",
        "--quiet",
    ])
    .expect("parses");
    assert_eq!(
        args.seed,
        Seed::Bulk {
            vaults: 2,
            items_per_vault: 5
        }
    );
    assert_eq!(args.latency, std::time::Duration::from_millis(25));
    assert_eq!(args.fail_rate, 0.5);
    assert!(args.quiet);
    assert!(parse(&["--fail-rate", "2"]).is_err());
    assert!(parse(&["--seed", "lots"]).is_err());
    assert!(parse(&["token"]).is_err(), "--vault is required");
    assert!(parse(&["token", "--vault", "Production:x", "--state", "s.json"]).is_err());
    assert!(
        parse(&["token", "--vault", "Production:r"]).is_err(),
        "--state or --host"
    );
    assert!(
        parse(&[
            "token",
            "--vault",
            "P:r",
            "--state",
            "s.json",
            "--host",
            "http://127.0.0.1:1"
        ])
        .is_err(),
        "not both"
    );
}

#[tokio::test]
async fn token_from_the_state_file_and_from_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().expect("utf-8 path");
    let server = DevServer::start(DevServerOptions {
        seed: Seed::Demo,
        state: Some(state.clone()),
        ..DevServerOptions::default()
    })
    .await
    .expect("starts");
    let http = reqwest::Client::new();
    let vault_status = |token: String| {
        let http = http.clone();
        let url = format!("{}/v1/vaults", server.base_url());
        async move {
            let r = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("answered");
            let status = r.status();
            let body: serde_json::Value = r.json().await.expect("json");
            (status, body.as_array().map(Vec::len).unwrap_or_default())
        }
    };

    let by_state = mint_token(token_args(&[
        "token",
        "--vault",
        "Production:r",
        "--vault",
        "Shared:rw",
        "--expires-in",
        "1h",
        "--state",
        state_arg,
    ]))
    .await
    .expect("minted from the state file");
    let claims = decode_unverified(&by_state).expect("claims");
    assert_eq!(claims.vts.len(), 2);
    assert!(claims.exp.is_some());
    assert_eq!(vault_status(by_state).await, (StatusCode::OK, 2));

    let host = server.base_url();
    let by_host = mint_token(token_args(&[
        "token",
        "--vault",
        "Staging:r",
        "--host",
        &host,
        "--token",
        server.token(),
    ]))
    .await
    .expect("minted by the server");
    let claims = decode_unverified(&by_host).expect("claims");
    assert_eq!(claims.vts[0].access(), Access::Read);
    assert!(claims.exp.is_none());
    assert_eq!(vault_status(by_host.clone()).await, (StatusCode::OK, 1));

    // The server refuses escalation, and the CLI says why.
    let err = mint_token(token_args(&[
        "token",
        "--vault",
        "Staging:rw",
        "--host",
        &host,
        "--token",
        &by_host,
    ]))
    .await
    .expect_err("no escalation");
    let text = err.to_string();
    assert!(text.contains("403"), "{text}");
    assert!(!text.contains(&by_host), "the token is not echoed: {text}");
    let err = mint_token(token_args(&[
        "token",
        "--vault",
        "Nowhere:r",
        "--state",
        state_arg,
    ]))
    .await
    .expect_err("unknown vault");
    assert!(err.to_string().contains("Nowhere"), "{err}");
    server.shutdown().await;
}
