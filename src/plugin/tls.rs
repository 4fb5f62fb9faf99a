//! HTTPS for plugins granted certificate authorities of their own (`grants.tls_ca`, such as a
//! Kubernetes cluster's CA): a sender trusting them (the trust itself is `crate::tls_trust`).
//!
//! Written here because wasmtime-wasi-http's `default_send_request` trusts only the public roots
//! and takes no TLS configuration. The sender follows its steps (connect, TLS, one HTTP/1
//! connection per request, the connect and first-byte timeouts) with a root store that holds
//! the public roots plus the granted CAs. A body that stalls between bytes is bounded by the
//! plugin call's wall-clock limit.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

pub use crate::tls_trust::{TlsCaError, TlsTrust};

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
    fn server_names_accept_ip_literals_and_dns_names() {
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("kubernetes.default.svc").is_ok());
    }
}
