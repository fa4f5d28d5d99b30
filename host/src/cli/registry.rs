//! OCI registries as `push` and `pull` reach them: references
//! (`oci://HOST/REPO:TAG` or `oci://HOST/REPO@sha256:…`), the client
//! (plain HTTP only for loopback hosts, HTTPS with rustls otherwise),
//! credentials from the docker config, and a manifest fetch bounded in size.

use std::net::IpAddr;

use artifacts::Sha256Digest;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::Failure;

/// The manifest media type of a wasm OCI artifact (an OCI image manifest).
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config media type of a wasm OCI artifact (wkg, the CNCF layout).
pub(crate) const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of its one layer, the wasm binary.
pub(crate) const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The largest manifest read: what the OCI distribution spec asks
/// registries to accept at least. A wasm artifact's is under 1 KiB.
pub(crate) const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The URL scheme of references.
const SCHEME: &str = "oci://";

/// An error about the registry or the reference.
pub(crate) fn failure(message: impl std::fmt::Display) -> Failure {
    Failure::Registry(message.to_string())
}

/// An error and its causes, `: `-separated (HTTP clients put the reason a
/// connection failed in a cause, not in their own message).
pub(crate) fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Parses `oci://HOST/REPO:TAG` or `oci://HOST/REPO@sha256:HEX`. The host
/// is always the part before the first `/` (no implied docker.io), and a
/// tag or digest is required.
pub(crate) fn parse_reference(text: &str) -> Result<Reference, Failure> {
    let usage = |why: &str| {
        Failure::Usage(format!(
            "{text:?} is not an OCI reference ({why}): expected oci://HOST/REPO:TAG or oci://HOST/REPO@sha256:HEX"
        ))
    };
    let rest = text
        .strip_prefix(SCHEME)
        .ok_or_else(|| usage("no oci://"))?;
    let (host, path) = rest.split_once('/').ok_or_else(|| usage("no repository"))?;
    if host.is_empty() || path.is_empty() {
        return Err(usage("no host or no repository"));
    }
    let (repository, reference) = if let Some((repo, digest)) = path.split_once('@') {
        let digest: Sha256Digest = digest
            .parse()
            .map_err(|_| usage("the digest is not sha256: and 64 lowercase hex digits"))?;
        (
            repo,
            Reference::with_digest(host.into(), repo.into(), digest.to_string()),
        )
    } else {
        // A tag follows the last `:` after the last `/` (a port is in the host).
        let last = path.rsplit('/').next().unwrap_or_default();
        let Some((_, tag)) = last.rsplit_once(':') else {
            return Err(usage("no tag or digest"));
        };
        let repo = path.get(..path.len() - tag.len() - 1).unwrap_or_default();
        (
            repo,
            Reference::with_tag(host.into(), repo.into(), tag.into()),
        )
    };
    // The repository and tag grammar is the OCI reference's own: parse
    // them under a host it accepts as one and insist they are unchanged.
    let parsed: Reference = format!("localhost/{path}")
        .parse()
        .map_err(|e| usage(&format!("{e}")))?;
    if parsed.repository() != repository
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    {
        return Err(usage("not a valid host and repository"));
    }
    Ok(reference)
}

/// Whether `host` (with or without a port) is this machine's loopback:
/// `localhost`, `127.0.0.0/8` or `[::1]`, the only hosts reached by plain HTTP.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(ip, _)| ip)
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A registry to push to or pull from, with its credentials.
pub(crate) struct Registry {
    pub(crate) client: Client,
    pub(crate) auth: RegistryAuth,
    http: reqwest::Client,
    scheme: &'static str,
}

impl Registry {
    /// The client for `reference`'s registry: plain HTTP if it is on
    /// loopback, HTTPS otherwise; basic auth if the docker config has
    /// credentials for it, anonymous if not.
    pub(crate) fn for_reference(reference: &Reference) -> Result<Self, Failure> {
        // rustls with ring (no provider is compiled into the client); an
        // error means one is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let host = reference.resolve_registry();
        let (protocol, scheme) = if is_loopback(host) {
            (ClientProtocol::Http, "http")
        } else {
            (ClientProtocol::Https, "https")
        };
        let config = ClientConfig {
            protocol,
            // One layer at a time: the store writes one stream at a time.
            max_concurrent_download: 1,
            max_concurrent_upload: 1,
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            read_timeout: Some(std::time::Duration::from_secs(120)),
            ..ClientConfig::default()
        };
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| failure(format!("cannot start an HTTP client: {e}")))?;
        Ok(Self {
            client: Client::new(config),
            auth: credentials(host)?,
            http,
            scheme,
        })
    }

    /// The manifest `reference` names, as its bytes and digest: read at
    /// most [`MAX_MANIFEST_BYTES`] (a registry sending more is refused
    /// before more is read), checked against the reference's digest if it
    /// has one.
    pub(crate) async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Vec<u8>, Sha256Digest), Failure> {
        let token = self
            .client
            .auth(reference, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| failure(format!("{}: {}", reference.whole(), with_causes(&e))))?;
        let version = reference.digest().or(reference.tag()).unwrap_or("latest");
        let url = format!(
            "{}://{}/v2/{}/manifests/{version}",
            self.scheme,
            reference.resolve_registry(),
            reference.repository()
        );
        let mut request = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, MANIFEST_MEDIA_TYPE);
        request = match (&token, &self.auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            (None, _) => request,
        };
        let mut response = request
            .send()
            .await
            .map_err(|e| failure(format!("fetching {url}: {}", with_causes(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failure(format!("{url}: the registry answered {status}")));
        }
        let too_large = || {
            failure(format!(
                "{url}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes; refused"
            ))
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failure(format!("reading {url}: {}", with_causes(&e))))?
        {
            if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let digest = Sha256Digest::of(&body);
        if let Some(wanted) = reference.digest()
            && wanted != digest.to_string()
        {
            return Err(failure(format!(
                "{url}: the manifest hashes to {digest}, not to {wanted}; refused"
            )));
        }
        Ok((body, digest))
    }
}

/// Credentials for `host` from `$DOCKER_CONFIG/config.json` (else
/// `~/.docker/config.json`): its `auths` entry (or credential helper) as
/// basic auth; anonymous if there is no config, no entry for the host or
/// a helper with nothing for it. An
/// identity token (an OAuth refresh token) is not supported: anonymous.
fn credentials(host: &str) -> Result<RegistryAuth, Failure> {
    match docker_credential::get_credential(host) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(RegistryAuth::Basic(user, password))
        }
        // No config, no entry, or a helper that has nothing for the host
        // (helpers answer "credentials not found" with a failure).
        Ok(DockerCredential::IdentityToken(_))
        | Err(
            CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::ConfigReadError
            | CredentialRetrievalError::NoCredentialConfigured
            | CredentialRetrievalError::HelperFailure { .. },
        ) => Ok(RegistryAuth::Anonymous),
        Err(e) => Err(failure(format!(
            "the docker config's credentials for {host}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = parse_reference("oci://127.0.0.1:5000/wasm/hello:v1").expect("tag");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "wasm/hello", Some("v1"))
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = parse_reference(&format!("oci://ghcr.io/a/b@{d}")).expect("digest");
        assert_eq!((r.registry(), r.digest()), ("ghcr.io", Some(d.as_str())));
        for bad in [
            "127.0.0.1:5000/wasm/hello:v1",
            "oci://127.0.0.1:5000/wasm/hello",
            "oci://host/Upper:v1",
            "oci://host/repo@sha256:abc",
            "oci:///repo:v1",
            "oci://host",
        ] {
            assert!(parse_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:5000",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
