//! TLS for the syslog connection (RFC 5425): rustls with the pure-Rust RustCrypto provider (no C
//! code, so it builds for wasm32-wasip2), trusting only the CA certificates the operator gives in
//! `tls-ca`, verifying the server's name (or IP address), and closing with `close_notify`.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// A client configuration trusting the PEM certificates in `ca_pem`; the error says what is
/// wrong with the config value (never quoting it).
pub fn client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("`tls-ca` is not PEM certificates: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("`tls-ca` holds a certificate rustls refuses: {e}"))?;
    }
    if roots.is_empty() {
        return Err("`tls-ca` holds no PEM certificate".into());
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls_rustcrypto::provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("no TLS version available: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name the server's certificate must carry: a DNS name or an IP address.
pub fn server_name(text: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(text.to_string())
        .map_err(|_| format!("`tls-server-name` is `{text}`: not a DNS name or IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_ca_that_is_not_pem_and_bad_names() {
        assert!(client_config("").is_err());
        assert!(client_config("hello").is_err());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("syslog.example.com").is_ok());
        assert!(server_name("not a name").is_err());
    }
}
