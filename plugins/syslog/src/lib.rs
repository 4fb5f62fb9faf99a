//! The built-in `syslog` audit sink: writes each record as an RFC 5424 message, octet-counted
//! (RFC 6587 §3.4.1), over one TCP connection per batch to `address`, optionally in TLS (RFC
//! 5425), which the operator must grant (`grants.tcp`): the sandbox refuses any other address.
//! TCP has no application acknowledgement: the batch is `ok` once every byte is written (and, in
//! TLS, `close_notify` sent) and the receiver has closed the connection after reading to its end
//! (or `close-wait-ms` passed). MSGID is the record's action; the structured data carries its
//! request-id (`requestId`, to dedupe on) and, for an Events API record, its stream (`source`).
//!
//! Config: `address` (required, `IP:port`; the sandbox has no name lookup), `format` (`raw`
//! default, `ocsf`, `ecs`: the JSON document is the message text), `hostname` (default `-`),
//! `app-name` (default `opsync`), `facility` (0-23, default 13 "log audit"), `sd-id` (default
//! `opconnect@32473`; 32473 is the documentation enterprise number, use your own),
//! `close-wait-ms` (default 2000), `tls` (`false` default), `tls-ca` (PEM CA certificates to
//! trust, required with TLS), `tls-server-name` (the name or IP the certificate must carry;
//! default the address's IP).

mod rfc5424;
mod tls;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use opsync_audit_kit::format::Format;
use opsync_audit_kit::settings::{check_keys, flag, number, plain, required};
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
    "tls",
    "tls-ca",
    "tls-server-name",
];

/// TLS settings, when `tls = true`.
struct Tls {
    config: std::sync::Arc<rustls::ClientConfig>,
    server_name: rustls::pki_types::ServerName<'static>,
}

struct Settings {
    address: SocketAddr,
    tls: Option<Tls>,
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
        let tls = if flag("tls", false)? {
            let ca = required("tls-ca")?;
            let name = plain("tls-server-name")?.unwrap_or_else(|| address.ip().to_string());
            Some(Tls {
                config: tls::client_config(&ca).map_err(misconfigured)?,
                server_name: tls::server_name(&name).map_err(misconfigured)?,
            })
        } else {
            for key in ["tls-ca", "tls-server-name"] {
                if plain(key)?.is_some() {
                    return Err(misconfigured(format!(
                        "`{key}` is set but `tls` is not true"
                    )));
                }
            }
            None
        };
        Ok(Self {
            address,
            tls,
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
        // rustls reports a refused certificate or handshake as invalid data.
        ErrorKind::InvalidData => misconfigured(format!("{msg} (TLS)")),
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
    let stream = TcpStream::connect(address).map_err(|e| io_error(address, "connect", &e))?;
    match &settings.tls {
        None => send_plain(settings, stream, &frames),
        Some(tls) => send_tls(settings, tls, stream, &frames),
    }
}

fn send_plain(
    settings: &Settings,
    mut stream: TcpStream,
    frames: &[u8],
) -> Result<(), PluginError> {
    let address = settings.address;
    stream
        .write_all(frames)
        .and_then(|()| stream.flush())
        .map_err(|e| io_error(address, "write", &e))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| io_error(address, "shutdown", &e))?;
    if close_timeout(settings, &stream) {
        drain(address, &mut stream)?;
    }
    Ok(())
}

fn send_tls(
    settings: &Settings,
    tls: &Tls,
    stream: TcpStream,
    frames: &[u8],
) -> Result<(), PluginError> {
    let address = settings.address;
    let conn = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .map_err(|e| misconfigured(format!("syslog tcp://{address}: TLS: {e}")))?;
    let mut tls_stream = rustls::StreamOwned::new(conn, stream);
    tls_stream
        .write_all(frames)
        .and_then(|()| tls_stream.flush())
        .map_err(|e| io_error(address, "TLS write", &e))?;
    tls_stream.conn.send_close_notify();
    tls_stream
        .conn
        .complete_io(&mut tls_stream.sock)
        .map_err(|e| io_error(address, "TLS close_notify", &e))?;
    if close_timeout(settings, &tls_stream.sock) {
        drain(address, &mut tls_stream)?;
    }
    Ok(())
}

/// Sets the wait for the receiver to close; false when there is none (or the platform refuses).
fn close_timeout(settings: &Settings, sock: &TcpStream) -> bool {
    settings.close_wait_ms > 0
        && sock
            .set_read_timeout(Some(Duration::from_millis(settings.close_wait_ms.into())))
            .is_ok()
}

/// Reads until the receiver closes (it does once it has read everything: the nearest thing to an
/// acknowledgement plain TCP has) or the wait ends. A reset means it did not read everything.
fn drain(address: SocketAddr, reader: &mut impl Read) -> Result<(), PluginError> {
    let mut sink = [0u8; 512];
    loop {
        match reader.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Err(io_error(address, "waiting for the receiver to close", &e));
            }
            // Timed out, or the peer closed without a TLS close_notify: everything was sent.
            Err(_) => return Ok(()),
        }
    }
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
