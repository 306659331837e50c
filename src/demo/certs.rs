//! A throw-away PKI for the demo, tests and benchmark: one CA, a broker certificate for
//! localhost, client certificates for mTLS.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::path::{Path, PathBuf};

/// Paths of generated PEM files.
#[derive(Debug, Clone)]
pub struct Pki {
    /// CA certificate.
    pub ca: PathBuf,
    /// Broker certificate and key.
    pub server: (PathBuf, PathBuf),
    /// Client certificates and keys, by name.
    pub clients: Vec<(String, PathBuf, PathBuf)>,
}

impl Pki {
    /// The client certificate and key generated for `name`.
    pub fn client(&self, name: &str) -> Option<(&Path, &Path)> {
        self.clients
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, c, k)| (c.as_path(), k.as_path()))
    }
}

/// Why the PKI could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// Writing a file failed.
    #[error("writing certificates: {0}")]
    Io(#[from] std::io::Error),
}

/// Generates a CA (named `ca_name`), a localhost server cert and one client cert per name.
pub fn generate(dir: &Path, ca_name: &str, clients: &[&str]) -> Result<Pki, PkiError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let ca = dir.join(format!("{ca_name}.pem"));
    std::fs::write(&ca, ca_cert.pem())?;

    let leaf = |name: &str,
                sans: Vec<String>,
                usage: ExtendedKeyUsagePurpose|
     -> Result<(PathBuf, PathBuf), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer)?;
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem())?;
        std::fs::write(&k, key.serialize_pem())?;
        Ok((c, k))
    };
    let server = leaf(
        &format!("{ca_name}-broker"),
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let clients = clients
        .iter()
        .map(|n| {
            let (c, k) = leaf(
                &format!("{ca_name}-{n}"),
                vec![format!("{n}.clients")],
                ExtendedKeyUsagePurpose::ClientAuth,
            )?;
            Ok((n.to_string(), c, k))
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    Ok(Pki {
        ca,
        server,
        clients,
    })
}
