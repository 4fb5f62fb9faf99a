//! Test guest for the plugin host's sandbox tests: one destination plugin whose behaviour is chosen
//! by the `mode` config key.

wit_bindgen::generate!({
    world: "destination",
    path: "../../wit/0.1.0",
    generate_all,
});

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use opsync::plugin::config;
use opsync::plugin::log::{Level, log};
use opsync::plugin::secrets::Secret;
use opsync::plugin::types::ChangeKind;
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingRequest, Scheme, http_error_code};
use wasi::io::streams::StreamError;

/// Counts calls in this instance: a fresh store per call must always see 1.
static CALLS: AtomicU32 = AtomicU32::new(0);

struct TestGuest;

fn receipt(location: String) -> Receipt {
    Receipt {
        location,
        destination_version: Some(CALLS.load(Ordering::SeqCst).to_string()),
        unchanged: false,
    }
}

/// Reveals the item's `password` field (empty when it has none).
fn reveal_password(event: &ItemEvent) -> String {
    event
        .item
        .fields
        .iter()
        .filter(|f| f.label == "password")
        .find_map(|f| f.value.as_ref().map(Secret::reveal))
        .unwrap_or_default()
}

/// Recursion on the WebAssembly stack (small frames, nothing in linear memory).
#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    recurse(n - 1).wrapping_mul(31) ^ n
}

/// Recursion with big frames, which Rust keeps on its shadow stack in linear memory.
#[inline(never)]
fn recurse_in_memory(depth: u64) -> u64 {
    let local = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return local[0];
    }
    recurse_in_memory(depth + 1) + black_box(local[1])
}

/// GET `url` (`http://host:port/path`); returns the status, the `location` header and the size
/// of the body, read to its end.
fn get(url: &str) -> Result<(u16, Option<String>, usize), String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// here")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_method(&Method::Get).map_err(|()| "method")?;
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| "scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "authority")?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "path")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("no response")?
        .map_err(|()| "response taken")?
        .map_err(|e| format!("{e:?}"))?;
    let location = response
        .headers()
        .get("location")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let status = response.status();
    let body = response.consume().map_err(|()| "body taken")?;
    let stream = body.stream().map_err(|()| "stream taken")?;
    let mut len = 0;
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => len += chunk.len(),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading the body: {:?}", http_error_code(&e)));
            }
        }
    }
    drop(stream);
    Ok((status, location, len))
}

impl Guest for TestGuest {
    fn validate() -> Result<(), PluginError> {
        match config::get("mode") {
            Some(_) => Ok(()),
            None => Err(PluginError::Misconfigured("mode is required".into())),
        }
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        if event.idempotency_key == "noop" {
            return Ok(Receipt {
                location: String::new(),
                destination_version: None,
                unchanged: true,
            });
        }
        // `by-title` lets one plugin instance behave differently per event.
        let mode = match config::get("mode").unwrap_or_default().as_str() {
            "by-title" => event.item.title.clone(),
            other => other.to_string(),
        };
        match mode.as_str() {
            "ok" => Ok(receipt(format!("ok:{}", event.item.title))),
            "echo" => {
                let kind = match event.kind {
                    ChangeKind::Created => "created",
                    ChangeKind::Updated => "updated",
                    ChangeKind::Deleted => "deleted",
                    ChangeKind::Rotated => "rotated",
                };
                let fields: Vec<String> = event
                    .item
                    .fields
                    .iter()
                    .map(|f| {
                        let len = f.value.as_ref().map(|v| v.len()).unwrap_or(0);
                        format!(
                            "{}:{}:{}:{}",
                            f.label,
                            f.field_type,
                            f.section.clone().unwrap_or_default(),
                            len
                        )
                    })
                    .collect();
                Ok(receipt(format!(
                    "{kind}|{}|{}|{}|{}|v{}|{}|{}|{}",
                    event.idempotency_key,
                    event.vault.name,
                    event.item.title,
                    event.item.category,
                    event.item.version,
                    event.item.tags.join(","),
                    fields.join(","),
                    config::keys().join(","),
                )))
            }
            "reveal-and-leak" => {
                // Logs and fails with the revealed value: the host must redact both.
                let value = event
                    .item
                    .fields
                    .iter()
                    .find_map(|f| f.value.as_ref().map(Secret::reveal))
                    .unwrap_or_default();
                log(Level::Info, &format!("the value is {value}"));
                println!("stdout also has {value}");
                Err(PluginError::Permanent(format!("rejected value {value}")))
            }
            "config-secret" => {
                let token = config::get_secret("token")
                    .ok_or(PluginError::Misconfigured("token is required".into()))?;
                let plain = config::get("token").is_some();
                // Revealed twice in one call: the host logs it at INFO once.
                let _again = token.reveal();
                Ok(receipt(format!(
                    "{}:{}:plain={plain}",
                    token.name(),
                    token.reveal().len()
                )))
            }
            "reserved" => Ok(receipt(format!(
                "key={:?} renamed-to={:?} listed={}",
                config::get("opsync.key"),
                config::get("opsync.renamed-to"),
                config::keys().iter().any(|k| k.starts_with("opsync.")),
            ))),
            "loop" => loop {
                black_box(CALLS.load(Ordering::Relaxed));
            },
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recursion" => Ok(receipt(recurse(black_box(u64::MAX / 2)).to_string())),
            "shadow-recursion" => Ok(receipt(recurse_in_memory(0).to_string())),
            "log-flood" => loop {
                log(Level::Info, &"x".repeat(1024));
            },
            "table-flood" => {
                let mut held = Vec::new();
                loop {
                    held.push(Secret::new("made", "value"));
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(receipt("woke".into()))
            }
            "trap" => {
                let v: Vec<u8> = Vec::new();
                Ok(receipt(black_box(v)[black_box(3)].to_string()))
            }
            "http" => {
                let url = config::get("url").unwrap_or_default();
                let (status, _, len) = get(&url).map_err(PluginError::Retryable)?;
                Ok(receipt(format!("status {status} ({len} bytes)")))
            }
            "redirect" => {
                let url = config::get("url").unwrap_or_default();
                let (status, location, _) = get(&url).map_err(PluginError::Retryable)?;
                match (status, location) {
                    (300..=399, Some(next)) => {
                        let (status, _, _) = get(&next).map_err(|e| {
                            PluginError::Retryable(format!("following redirect: {e}"))
                        })?;
                        Ok(receipt(format!("followed to status {status}")))
                    }
                    (status, _) => Ok(receipt(format!("status {status}"))),
                }
            }
            "tcp" => {
                use std::io::Write;
                let addr = config::get("addr").unwrap_or_default();
                let mut stream = std::net::TcpStream::connect(addr.as_str())
                    .map_err(|e| PluginError::Retryable(format!("connect {addr}: {e}")))?;
                stream
                    .write_all(b"hello")
                    .map_err(|e| PluginError::Retryable(format!("write: {e}")))?;
                Ok(receipt(format!("sent to {addr}")))
            }
            "env" => Ok(receipt(format!(
                "env={} args={} cwd={:?} root={}",
                std::env::vars().count(),
                std::env::args().count(),
                std::env::current_dir().ok(),
                std::fs::read_dir("/").is_ok()
            ))),
            "receipt-leak" => {
                // A receipt that carries a revealed value and a forged log line: the host must
                // redact and escape it before the ledger, `status` or a log line sees it.
                let value = reveal_password(&event);
                Ok(receipt(format!(
                    "stored at /kv/{value}\nERROR forged plugin=other"
                )))
            }
            "straddle" => {
                // The value straddles the 4096-byte cut of log lines and errors.
                let value = reveal_password(&event);
                let message = format!("{}{value}", "x".repeat(4096 - 6));
                log(Level::Info, &message);
                Err(PluginError::Permanent(message))
            }
            "forge" => {
                log(Level::Info, "line one\nERROR forged log line plugin=other");
                Err(PluginError::Permanent(
                    "bad\nERROR forged error plugin=other".into(),
                ))
            }
            "secret-hoard" => {
                // Each handle is dropped at once, so only the host's redaction set grows.
                let big = "s".repeat(16 << 10);
                for i in 0..2000 {
                    drop(Secret::new("made", &format!("{i}{big}")));
                }
                Ok(receipt("hoarded".into()))
            }
            "stdout-flood" => {
                let line = "o".repeat(1023);
                for _ in 0..64 {
                    println!("{line}");
                }
                Ok(receipt("printed".into()))
            }
            "symlink" => {
                unsafe extern "C" {
                    fn symlink(
                        target: *const std::ffi::c_char,
                        link: *const std::ffi::c_char,
                    ) -> i32;
                }
                // SAFETY: two NUL-terminated literals; wasi-libc's symlink only reads them.
                let rc = unsafe { symlink(c"/etc/passwd".as_ptr(), c"/escape".as_ptr()) };
                Ok(receipt(format!("symlink rc={rc}")))
            }
            "write-bomb" => {
                use std::io::Write;
                let mut file = std::fs::File::create("/big.bin")
                    .map_err(|e| PluginError::Retryable(format!("create: {e}")))?;
                let chunk = vec![7u8; 1 << 20];
                for _ in 0..8 {
                    file.write_all(&chunk)
                        .map_err(|e| PluginError::Retryable(format!("write: {e}")))?;
                }
                Ok(receipt("wrote 8 MiB".into()))
            }
            other => Err(PluginError::Misconfigured(format!("unknown mode {other}"))),
        }
    }
}

export!(TestGuest);
