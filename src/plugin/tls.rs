//! HTTPS for plugins granted certificate authorities of their own (`grants.tls_ca`, such as a
//! Kubernetes cluster's CA): the CA bundles, read as PEM, and a sender trusting them.
//!
//! Written here because wasmtime-wasi-http's `default_send_request` trusts only the public roots
//! and takes no TLS configuration. The sender follows its steps (connect, TLS, one HTTP/1
//! connection per request, the connect and first-byte timeouts) with a root store that holds
//! the public roots plus the granted CAs. A body that stalls between bytes is bounded by the
//! plugin call's wall-clock limit.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// Why a granted CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsCaError {
    #[error("cannot read CA bundle {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("CA bundle {path} holds no PEM certificate")]
    Empty { path: String },
    #[error("CA bundle {path}: a certificate is not usable as a trust anchor: {reason}")]
    Unusable { path: String, reason: String },
    #[error("no TLS client configuration: {0}")]
    Config(String),
}

/// The certificates of one PEM file (DER).
fn read_ca_bundle(path: &Path) -> Result<Vec<Vec<u8>>, TlsCaError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| TlsCaError::Read {
        path: shown.clone(),
        source,
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsCaError::Unusable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsCaError::Empty { path: shown });
    }
    Ok(certs.into_iter().map(|c| c.to_vec()).collect())
}

/// The trust of a plugin granted CA bundles: the public roots plus the bundles' certificates.
#[derive(Clone, Debug)]
pub struct TlsTrust {
    /// The granted certificates (DER), to compare grants.
    extra: Vec<Vec<u8>>,
    config: Arc<rustls::ClientConfig>,
}

impl PartialEq for TlsTrust {
    fn eq(&self, other: &Self) -> bool {
        self.extra == other.extra
    }
}

impl Eq for TlsTrust {}

impl TlsTrust {
    /// Reads each PEM bundle; the first unusable one is the error.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Self, TlsCaError> {
        let mut extra = Vec::new();
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        for path in paths {
            for der in read_ca_bundle(path.as_ref())? {
                roots
                    .add(CertificateDer::from(der.clone()))
                    .map_err(|e| TlsCaError::Unusable {
                        path: path.as_ref().display().to_string(),
                        reason: e.to_string(),
                    })?;
                extra.push(der);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsCaError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            extra,
            config: Arc::new(config),
        })
    }

    /// The client configuration to connect with.
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }
}

/// What a sender answers: the response and the future that drives its connection to the end.
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

/// Sends one `https` request over a new connection verified against `tls`.
pub async fn send(
    mut request: http::Request<WasiBody>,
    options: RequestOptions,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Sent, HttpError> {
    let authority = request
        .uri()
        .authority()
        .ok_or(HttpError::HttpRequestUriInvalid)?;
    let host = authority.host().to_string();
    let address = format!("{host}:{}", authority.port_u16().unwrap_or(443));
    let connect_timeout = options.connect_timeout.unwrap_or(Duration::from_secs(600));
    let first_byte_timeout = options
        .first_byte_timeout
        .unwrap_or(Duration::from_secs(600));

    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(&address))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Connect)?;
    let name = server_name(&host)?;
    let stream = tokio::time::timeout(
        connect_timeout,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)?
    .map_err(HttpError::Tls)?;
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;

    // On the wire, the request line carries only the path and query.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<http::Uri>()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;

    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let response = {
        let sending = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
        tokio::pin!(sending);
        tokio::select! {
            biased;
            sent = &mut sending => sent,
            ended = &mut conn => {
                conn_done = true;
                ended?;
                sending.await
            }
        }
    }
    .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
    let drive = async move {
        if !conn_done {
            conn.await?;
        }
        Ok(())
    };
    Ok((response, Box::new(drive)))
}

/// The name a certificate must match: an IP literal or a DNS name (`[::1]` without brackets).
fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, HttpError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(rustls::pki_types::ServerName::from(ip));
    }
    rustls::pki_types::ServerName::try_from(bare.to_string()).map_err(HttpError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bundle_names_its_path() {
        let err = read_ca_bundle(Path::new("/nonexistent/ca.crt")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = read_ca_bundle(&path).expect_err("empty");
        assert!(matches!(err, TlsCaError::Empty { .. }), "{err}");
    }

    #[test]
    fn server_names_accept_ip_literals_and_dns_names() {
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("kubernetes.default.svc").is_ok());
    }
}
