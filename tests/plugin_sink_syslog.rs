//! The built-in `syslog` audit sink end to end, through the sandbox, against a real rsyslog
//! (tests/peers/rsyslog.rs): octet-counted RFC 5424 frames arrive one message each and rsyslog
//! parses header and structured data; the sandbox refuses an address that is not granted.

mod peers;
mod plugin_support;
mod sink_fakes;

use std::net::SocketAddr;
use std::sync::OnceLock;

use opsync::plugin::{FailureKind, Grants, Plugin, PluginHost};
use peers::failure;
use peers::rsyslog::Rsyslog;
use plugin_support::host_with_cache;
use serde_json::Value;
use sink_fakes::{audit_sink, daemon_record, record, records};

fn tcp_grant(addr: SocketAddr) -> Grants {
    Grants {
        tcp: vec![addr],
        ..Grants::default()
    }
}

/// One host for the whole test binary, with a compile cache: the TLS stack makes the syslog
/// component about 1 MB, which takes seconds to compile on a loaded machine; compiled once, each
/// later load takes milliseconds (as in the daemon, which keeps the same cache on disk).
fn cached_host() -> &'static PluginHost {
    static HOST: OnceLock<(PluginHost, tempfile::TempDir)> = OnceLock::new();
    let (host, _) = HOST.get_or_init(|| {
        let dir = tempfile::tempdir().expect("cache dir");
        (host_with_cache(Some(dir.path().to_path_buf())), dir)
    });
    host
}

fn sink(address: &str, grant: SocketAddr, extra: &[(&str, &str)]) -> Plugin {
    let mut pairs = vec![("address", address), ("hostname", "connect-host")];
    pairs.extend_from_slice(extra);
    audit_sink(cached_host(), "syslog", &pairs, tcp_grant(grant))
}

/// One line of rsyslog's `parsed.log`.
struct Parsed {
    pri: String,
    timestamp: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    sd: Value,
    msg: Value,
}

fn parse(line: &str) -> Parsed {
    let parts: Vec<&str> = line.splitn(8, '\t').collect();
    assert_eq!(parts.len(), 8, "{line}");
    let msg = parts[7].trim_start_matches('\u{feff}');
    Parsed {
        pri: parts[0].into(),
        timestamp: parts[1].into(),
        hostname: parts[2].into(),
        app_name: parts[3].into(),
        procid: parts[4].into(),
        msgid: parts[5].into(),
        sd: serde_json::from_str(parts[6]).unwrap_or_else(|e| panic!("SD JSON {e}: {line}")),
        msg: serde_json::from_str(msg).unwrap_or_else(|e| panic!("MSG JSON {e}: {line}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octet_counted_rfc5424_frames_arrive_and_rsyslog_parses_them() {
    let rsyslog = Rsyslog::start().await;
    let addr: SocketAddr = rsyslog.address().parse().expect("address");
    let mut batch = records(1, 3);
    // Characters SD values must escape, and a newline inside the message text.
    batch[0].request.actor.jti = "abc\"q]x\\y".into();
    batch[1].request.actor.user_agent = "two\nlines".into();
    batch.push(daemon_record("opsync-dead-letter-9", "DEAD_LETTER"));
    sink(&rsyslog.address(), addr, &[])
        .ingest(&batch)
        .await
        .expect("ships");

    let lines = rsyslog.wait_parsed(4).await;
    assert_eq!(lines.len(), 4, "one message per record: {lines:#?}");
    let first = parse(&lines[0]);
    assert_eq!(first.pri, "110", "facility 13, informational");
    assert_eq!(first.timestamp, "2024-05-01T12:00:01.123000Z");
    assert_eq!(first.hostname, "connect-host");
    assert_eq!(first.app_name, "opsync");
    assert_eq!(first.procid, "-");
    assert_eq!(first.msgid, "UPDATE");
    // mmpstrucdata lower-cases parameter names.
    let sd = &first.sd["opconnect@32473"];
    assert_eq!(sd["requestid"], "req-00001", "{}", first.sd);
    assert_eq!(sd["jti"], "abc\"q]x\\y", "escaped and unescaped again");
    assert_eq!(sd["result"], "SUCCESS");
    assert_eq!(sd["item"], "h2x6h2x6h2x6h2x6h2x6h2x6h2");
    assert_eq!(first.msg["requestId"], "req-00001", "raw format by default");
    assert_eq!(first.msg["actor"]["jti"], "abc\"q]x\\y");

    let second = parse(&lines[1]);
    assert_eq!(second.msg["actor"]["userAgent"], "two\nlines");
    let third = parse(&lines[2]);
    assert_eq!(third.pri, "108", "a denied request is a warning");
    assert_eq!(third.sd["opconnect@32473"]["result"], "DENY");
    let daemon = parse(&lines[3]);
    assert_eq!(daemon.msgid, "DEAD_LETTER");
    assert_eq!(daemon.msg["action"], "DEAD_LETTER");
    assert!(daemon.sd["opconnect@32473"].get("item").is_none());

    let raw = rsyslog.raw();
    assert!(raw[0].starts_with("<110>1 2024-05-01T12:00:01.123000Z connect-host opsync - UPDATE [opconnect@32473 requestId=\"req-00001\""), "{}", raw[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsf_and_ecs_documents_are_the_message_text() {
    let rsyslog = Rsyslog::start().await;
    let addr: SocketAddr = rsyslog.address().parse().expect("address");
    sink(
        &rsyslog.address(),
        addr,
        &[
            ("format", "ocsf"),
            ("app-name", "op-audit"),
            ("facility", "4"),
        ],
    )
    .ingest(&[record(2).into()])
    .await
    .expect("ships");
    sink(&rsyslog.address(), addr, &[("format", "ecs")])
        .ingest(&[record(3).into()])
        .await
        .expect("ships");
    let lines = rsyslog.wait_parsed(2).await;
    let ocsf = parse(&lines[0]);
    assert_eq!(ocsf.pri, "38", "facility 4 (auth), informational");
    assert_eq!(ocsf.app_name, "op-audit");
    assert_eq!(ocsf.msg["class_uid"], 6003);
    assert_eq!(ocsf.msg["metadata"]["uid"], "req-00002");
    let ecs = parse(&lines[1]);
    assert_eq!(ecs.msg["event"]["id"], "req-00003");
    assert_eq!(ecs.msg["event"]["outcome"], "failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_refuses_an_address_that_is_not_granted() {
    let rsyslog = Rsyslog::start().await;
    let addr: SocketAddr = rsyslog.address().parse().expect("address");
    let mut other = addr;
    other.set_port(addr.port().wrapping_add(1));
    let err = sink(&rsyslog.address(), other, &[])
        .ingest(&records(1, 1))
        .await
        .expect_err("not granted");
    let (kind, message) = failure(err);
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(message.contains("to-syslog"), "{message}");
    assert!(
        message.contains(&format!("tcp://{addr}: connect")),
        "{message}"
    );
    assert!(message.contains("grants.tcp"), "{message}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(rsyslog.raw().is_empty(), "nothing reached rsyslog");

    // A granted address where nobody listens: the peer is down, retry later.
    let (kind, message) = failure(
        sink(&other.to_string(), other, &[])
            .ingest(&records(1, 1))
            .await
            .expect_err("nobody listens"),
    );
    assert_eq!(kind, FailureKind::Retryable, "{message}");
}

#[tokio::test]
async fn a_host_name_address_is_misconfigured() {
    let any: SocketAddr = "127.0.0.1:514".parse().expect("address");
    let (kind, message) = failure(
        sink("syslog.example.com:514", any, &[])
            .validate()
            .await
            .expect_err("no name lookup"),
    );
    assert_eq!(kind, FailureKind::Misconfigured);
    assert!(message.contains("write IP:port"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_frames_arrive_and_a_certificate_not_trusted_is_misconfigured() {
    let rsyslog = Rsyslog::start_tls().await;
    let addr: SocketAddr = rsyslog.address().parse().expect("address");
    let ca = rsyslog
        .cert_pem
        .clone()
        .expect("a TLS rsyslog has a certificate");
    sink(
        &rsyslog.address(),
        addr,
        &[("tls", "true"), ("tls-ca", &ca)],
    )
    .ingest(&records(1, 3))
    .await
    .expect("ships over TLS");
    let lines = rsyslog.wait_parsed(3).await;
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let first = parse(&lines[0]);
    assert_eq!(first.sd["opconnect@32473"]["requestid"], "req-00001");
    assert_eq!(first.msg["requestId"], "req-00001");

    // Another certificate as the only trusted CA: the handshake fails, nothing is sent.
    let other = tempfile::tempdir().expect("temp dir");
    let other_ca = peers::rsyslog::self_signed(other.path());
    let (kind, message) = failure(
        sink(
            &rsyslog.address(),
            addr,
            &[("tls", "true"), ("tls-ca", &other_ca)],
        )
        .ingest(&records(4, 1))
        .await
        .expect_err("untrusted"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(message.contains("(TLS)"), "{message}");
    // The certificate is for 127.0.0.1, not this name.
    let (kind, message) = failure(
        sink(
            &rsyslog.address(),
            addr,
            &[
                ("tls", "true"),
                ("tls-ca", &ca),
                ("tls-server-name", "syslog.example.com"),
            ],
        )
        .ingest(&records(5, 1))
        .await
        .expect_err("wrong name"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        rsyslog.wait_parsed(3).await.len(),
        3,
        "nothing more arrived"
    );
}

#[tokio::test]
async fn tls_config_errors_are_misconfigured() {
    let any: SocketAddr = "127.0.0.1:6514".parse().expect("address");
    for (pairs, expected) in [
        (vec![("tls", "true")], "`tls-ca` is required"),
        (
            vec![("tls", "true"), ("tls-ca", "not pem")],
            "`tls-ca` holds no PEM certificate",
        ),
        (
            vec![("tls-ca", "x")],
            "`tls-ca` is set but `tls` is not true",
        ),
    ] {
        let (kind, message) = failure(
            sink("127.0.0.1:6514", any, &pairs)
                .validate()
                .await
                .expect_err("bad TLS config"),
        );
        assert_eq!(kind, FailureKind::Misconfigured);
        assert!(message.contains(expected), "{message}");
    }
}
