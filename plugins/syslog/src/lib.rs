//! The built-in `syslog` audit sink: writes each record as an RFC 5424 message, octet-counted
//! (RFC 6587 §3.4.1), over one plain TCP connection per batch to `address`, which the operator
//! must grant (`grants.tcp`): the sandbox refuses any other address. TCP has no application
//! acknowledgement: the batch is `ok` once every byte is written and the receiver has closed the
//! connection after reading to its end (or `close-wait-ms` passed). No TLS in this version.
//!
//! Config: `address` (required, `IP:port`; the sandbox has no name lookup), `format` (`raw`
//! default, `ocsf`, `ecs`: the JSON document is the message text), `hostname` (default `-`),
//! `app-name` (default `opsync`), `facility` (0-23, default 13 "log audit"), `sd-id` (default
//! `opconnect@32473`; 32473 is the documentation enterprise number, use your own),
//! `close-wait-ms` (default 2000).

mod rfc5424;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use opsync_audit_kit::format::Format;
use opsync_audit_kit::settings::{check_keys, number, plain, required};
use opsync_audit_kit::{AuditEvent, Guest, PluginError, misconfigured, retryable};

use rfc5424::Header;

const KNOWN_KEYS: &[&str] = &[
    "address",
    "format",
    "hostname",
    "app-name",
    "facility",
    "sd-id",
    "close-wait-ms",
];

struct Settings {
    address: SocketAddr,
    format: Format,
    header: Header,
    close_wait_ms: u32,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let text = required("address")?;
        let address = text.parse::<SocketAddr>().map_err(|_| {
            misconfigured(format!(
                "`address` is `{text}`: write IP:port (the sandbox has no name lookup)"
            ))
        })?;
        let header = Header::new(
            plain("hostname")?.as_deref().unwrap_or("-"),
            plain("app-name")?.as_deref().unwrap_or("opsync"),
            number("facility", 0..=23, 13)? as u8,
            plain("sd-id")?.as_deref().unwrap_or("opconnect@32473"),
        )
        .map_err(misconfigured)?;
        Ok(Self {
            address,
            format: Format::load(Format::Raw)?,
            header,
            close_wait_ms: number("close-wait-ms", 0..=20_000, 2_000)?,
        })
    }
}

fn io_error(address: SocketAddr, step: &str, e: &std::io::Error) -> PluginError {
    let msg = format!("syslog tcp://{address}: {step}: {e}");
    match e.kind() {
        ErrorKind::PermissionDenied => misconfigured(format!(
            "{msg}; the sandbox allows only the addresses in the plugin's grants.tcp"
        )),
        _ => retryable(msg),
    }
}

fn ship(settings: &Settings, batch: &[AuditEvent]) -> Result<(), PluginError> {
    let mut frames = Vec::new();
    for event in batch {
        let doc = settings.format.render(event)?;
        let message = settings.header.message(event, &doc)?;
        rfc5424::frame(&mut frames, &message);
    }
    let address = settings.address;
    let mut stream = TcpStream::connect(address).map_err(|e| io_error(address, "connect", &e))?;
    stream
        .write_all(&frames)
        .and_then(|()| stream.flush())
        .map_err(|e| io_error(address, "write", &e))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| io_error(address, "shutdown", &e))?;
    // The receiver closes once it has read everything; waiting for that is the nearest thing to
    // an acknowledgement plain TCP has. A receiver that keeps the connection open is not an error.
    if settings.close_wait_ms > 0
        && stream
            .set_read_timeout(Some(Duration::from_millis(settings.close_wait_ms.into())))
            .is_ok()
    {
        let mut sink = [0u8; 512];
        loop {
            match stream.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Err(io_error(address, "waiting for the receiver to close", &e));
                }
                Err(_) => break,
            }
        }
    }
    Ok(())
}

struct Syslog;

impl Guest for Syslog {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(drop)
    }

    fn ingest(batch: Vec<AuditEvent>) -> Result<(), PluginError> {
        if batch.is_empty() {
            return Ok(());
        }
        ship(&Settings::load()?, &batch)
    }
}

opsync_audit_kit::export_audit_sink!(Syslog);
