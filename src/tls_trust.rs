//! TLS client trust: the public roots plus CA bundles read as PEM, for the connections that
//! trust more than the public roots (plugins granted a CA, the PostgreSQL state's
//! `sslrootcert`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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

/// The public roots plus the certificates of some CA bundles.
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
}
