//! TLS settings: reading them from a URL, removing them before the driver parses it, and the
//! rustls client configuration for PostgreSQL (on aws-lc-rs, the provider the rest of the
//! engine links).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{TlsMode, WarehouseError};

/// URL parameters that carry TLS settings (libpq's and MySQL's spellings).
const MODE_KEYS: [&str; 2] = ["sslmode", "ssl-mode"];
const CA_KEYS: [&str; 2] = ["sslrootcert", "ssl-ca"];

/// The TLS mode a URL asks for; [`TlsMode::Prefer`] when it says nothing.
pub(super) fn mode_from_url(url: &str) -> Result<TlsMode, WarehouseError> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(TlsMode::default());
    };
    let mut mode = None;
    let mut ca_file = None;
    for (key, value) in parsed.query_pairs() {
        if MODE_KEYS.contains(&key.as_ref()) {
            mode = Some(value.to_ascii_lowercase().replace('_', "-"));
        } else if CA_KEYS.contains(&key.as_ref()) {
            ca_file = Some(PathBuf::from(value.as_ref()));
        }
    }
    Ok(match mode.as_deref() {
        None | Some("prefer" | "preferred" | "allow") => TlsMode::Prefer,
        Some("disable" | "disabled") => TlsMode::Disable,
        Some("require" | "required") => TlsMode::Require,
        Some("verify-ca" | "verify-full" | "verify-identity") => TlsMode::VerifyFull { ca_file },
        Some(other) => {
            return Err(WarehouseError::InvalidUrl {
                reason: format!(
                    "unknown TLS mode `{other}` (expected `disable`, `prefer`, `require`, `verify-ca` or `verify-full`)"
                ),
            });
        }
    })
}

/// The URL without its TLS parameters, for the driver; with `mariadb://` spelled `mysql://`.
/// The rest of the URL is passed on byte for byte (drivers decode `+` differently).
pub(super) fn driver_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let is_tls_key = |pair: &str| {
        url::form_urlencoded::parse(pair.as_bytes())
            .next()
            .is_some_and(|(key, _)| {
                MODE_KEYS.contains(&key.as_ref()) || CA_KEYS.contains(&key.as_ref())
            })
    };
    let query = parsed.query().unwrap_or_default().to_string();
    let strips = query.split('&').any(is_tls_key);
    if parsed.scheme() != "mariadb" && !strips {
        return url.to_string();
    }
    if parsed.scheme() == "mariadb" {
        // Both are non-special schemes, so the change cannot fail.
        let _ = parsed.set_scheme("mysql");
    }
    if strips {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !is_tls_key(pair))
            .collect();
        let kept = kept.join("&");
        parsed.set_query((!kept.is_empty()).then_some(kept.as_str()));
    }
    parsed.to_string()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// The rustls configuration for PostgreSQL in `mode` (not called for [`TlsMode::Disable`]).
pub(super) fn pg_client_config(mode: &TlsMode) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        TlsMode::VerifyFull {
            ca_file: Some(path),
        } => {
            let bytes = fs_err::read(path).map_err(|e| e.to_string())?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "{}: no PEM certificate in the file",
                    path.display()
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::VerifyFull { ca_file: None } => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| format!("the system's certificate store: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// The SSL options for MySQL in `mode`; `None` for plain TCP.
pub(super) fn mysql_ssl_opts(mode: &TlsMode) -> Option<mysql_async::SslOpts> {
    // mysql_async builds its rustls config with the process's default provider; make sure it is
    // the one this engine links (a no-op when one is installed already).
    let _ = aws_lc_rs::default_provider().install_default();
    match mode {
        TlsMode::Disable => None,
        TlsMode::Prefer | TlsMode::Require => Some(
            mysql_async::SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        TlsMode::VerifyFull { ca_file } => Some(match ca_file {
            Some(path) => mysql_async::SslOpts::default()
                .with_root_certs(vec![path.clone().into()])
                .with_disable_built_in_roots(true),
            None => mysql_async::SslOpts::default(),
        }),
    }
}

/// Encrypts without checking who is at the other end (libpq's `prefer`/`require`): the
/// certificate is accepted as is, the handshake signatures are still verified.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
