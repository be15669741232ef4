//! TLS to Postgres: off unless the URL asks for it with `sslmode=require`, then rustls with full
//! verification — the server's certificate must chain to the system's roots or to the CA file
//! the operator names (`storage.ca_file`) and match the host. No OpenSSL; no "encrypt but don't
//! check" mode.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// How connections to the database are made.
#[derive(Clone)]
pub enum PgTls {
    /// Plain TCP (`sslmode` disable or prefer, the default).
    Off,
    /// TLS with certificate and host verification.
    On(MakeRustlsConnect),
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "PgTls::Off",
            Self::On(_) => "PgTls::On",
        })
    }
}

impl PgTls {
    /// TLS as `config`'s `sslmode` asks: `require` turns it on, trusting the system roots and
    /// the certificates in `ca_file` (PEM).
    ///
    /// # Errors
    /// [`StoreError::Refused`] when the CA file cannot be read or holds no certificate, or no
    /// root at all can be loaded.
    pub fn for_config(
        config: &tokio_postgres::Config,
        ca_file: Option<&Path>,
    ) -> Result<Self, StoreError> {
        if config.get_ssl_mode() != SslMode::Require {
            return Ok(Self::Off);
        }
        // The process's crypto provider (ring), as every other client installs it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    StoreError::Refused(format!("storage.ca_file {}: {e}", path.display()))
                })?
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    StoreError::Refused(format!("storage.ca_file {}: {e}", path.display()))
                })?;
            if certs.is_empty() {
                return Err(StoreError::Refused(format!(
                    "storage.ca_file {}: no certificate in it",
                    path.display()
                )));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    StoreError::Refused(format!("storage.ca_file {}: {e}", path.display()))
                })?;
            }
        }
        if roots.is_empty() {
            return Err(StoreError::Refused(
                "sslmode=require, but no trusted root certificate was found (name one in storage.ca_file)"
                    .into(),
            ));
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(Arc::new(roots))
            .with_no_client_auth();
        Ok(Self::On(MakeRustlsConnect::new(tls)))
    }
}
