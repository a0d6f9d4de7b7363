//! TLS for SSL_GET, with rustls (ring provider).
//!
//! keepalived does not verify the real server's certificate for SSL_GET (it checks that
//! the server answers, not who it is; its SSL context has no verify callback unless a CA
//! is configured for client authentication). rvs does the same on purpose: any
//! certificate chain, self-signed or expired, for any name, is accepted. The handshake
//! signature is still checked against the presented key, so the session is a real TLS
//! session with the holder of that key. SNI is sent only with `enable_sni`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Accepts every certificate (see the module documentation for why).
#[derive(Debug)]
pub struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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

fn config(sni: bool) -> Arc<ClientConfig> {
    static WITH: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static WITHOUT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let cell = if sni { &WITH } else { &WITHOUT };
    cell.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut c = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth();
        c.enable_sni = sni;
        Arc::new(c)
    })
    .clone()
}

/// Handshakes over `tcp`; `sni`: the name to send (when it is a valid DNS name).
pub async fn connect(
    tcp: TcpStream,
    sni: Option<&str>,
    ip: IpAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = sni
        .and_then(|n| ServerName::try_from(n.to_string()).ok())
        .filter(|n| matches!(n, ServerName::DnsName(_)));
    let send_sni = name.is_some();
    let name = name.unwrap_or(ServerName::IpAddress(ip.into()));
    TlsConnector::from(config(send_sni))
        .connect(name, tcp)
        .await
}
