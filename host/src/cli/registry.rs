//! OCI registries as `push` and `pull` reach them: references
//! (`oci://HOST/REPO:TAG` or `oci://HOST/REPO@sha256:…`), credentials from
//! the docker config, and a small client of the distribution API (on
//! reqwest, HTTPS with rustls; plain HTTP only for loopback hosts) that
//! bounds every read from the registry and reaches no URL off it but its
//! token realm and its redirects, on the same transport rule.

use std::net::IpAddr;

use artifacts::sha256::Sha256Digest;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::Reference;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

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
/// The largest token answer read (a bearer token is a few KiB).
pub(crate) const MAX_TOKEN_BYTES: usize = 1 << 20;
/// The most of an error answer's body read; its start is shown.
pub(crate) const MAX_ERROR_BYTES: usize = 16 << 10;
/// How much of an error answer's text a message shows.
const SHOWN_ERROR_CHARS: usize = 300;
/// Redirects followed at most in one request.
const MAX_REDIRECTS: usize = 5;

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

/// What the client may reach, for a registry on loopback or not: HTTPS,
/// or plain HTTP from a loopback registry to a loopback host.
fn reachable(url: &Url, from_loopback: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => from_loopback && url.host_str().is_some_and(is_loopback),
        _ => false,
    }
}

/// What requests to the registry carry.
enum Authorization {
    Anonymous,
    Basic(String, String),
    Bearer(String),
}

/// What a token is asked for.
#[derive(Clone, Copy)]
pub(crate) enum Operation {
    Pull,
    Push,
}

/// A registry to push to or pull from, with its credentials. Requests go
/// to its origin only, and carry its authorization; a redirect (a
/// registry sends blob downloads to its storage) is followed at most
/// [`MAX_REDIRECTS`] times, on the transport rule of [`reachable`]
/// (reqwest drops the authorization when it leaves the host).
pub(crate) struct Registry {
    http: reqwest::Client,
    /// `scheme://host[:port]`.
    origin: Url,
    loopback: bool,
    credentials: Option<(String, String)>,
    authorization: Authorization,
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
        let loopback = is_loopback(host);
        let scheme = if loopback { "http" } else { "https" };
        let origin: Url = format!("{scheme}://{host}/")
            .parse()
            .map_err(|e| failure(format!("{}: not a registry host: {e}", reference.whole())))?;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if reachable(attempt.url(), loopback) {
                attempt.follow()
            } else {
                let refused = format!(
                    "a redirect to {} is refused: only HTTPS is followed (plain HTTP only from a loopback registry to a loopback host)",
                    attempt.url()
                );
                attempt.error(refused)
            }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .redirect(redirects)
            .build()
            .map_err(|e| failure(format!("cannot start an HTTP client: {e}")))?;
        let credentials = credentials(host)?;
        let authorization = match &credentials {
            Some((user, password)) => Authorization::Basic(user.clone(), password.clone()),
            None => Authorization::Anonymous,
        };
        Ok(Self {
            http,
            origin,
            loopback,
            credentials,
            authorization,
        })
    }

    /// `path` on the registry.
    fn url(&self, path: &str) -> Result<Url, Failure> {
        self.origin
            .join(path)
            .map_err(|e| failure(format!("{}{path}: not a URL: {e}", self.origin)))
    }

    /// Where the blob `digest` of `reference`'s repository is on the registry.
    fn blob_url(&self, reference: &Reference, digest: &str) -> Result<Url, Failure> {
        self.url(&format!("/v2/{}/blobs/{digest}", reference.repository()))
    }

    /// A request to `url` (on the registry) with its authorization.
    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.authorization {
            Authorization::Anonymous => request,
            Authorization::Basic(user, password) => request.basic_auth(user, Some(password)),
            Authorization::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// Follows the registry's token flow for `operation` on `reference`:
    /// a `Bearer` challenge at `/v2/` sends us to its realm (HTTPS, or
    /// plain HTTP on loopback from a loopback registry) for a token read up
    /// to [`MAX_TOKEN_BYTES`], sent on every later request; otherwise the
    /// docker config's credentials, if any, go as basic auth.
    pub(crate) async fn authenticate(
        &mut self,
        reference: &Reference,
        operation: Operation,
    ) -> Result<(), Failure> {
        let url = self.url("/v2/")?;
        let response = send(self.http.get(url.clone()), &url).await?;
        // Only the challenge matters: the body is never read.
        let challenge = (response.status() == StatusCode::UNAUTHORIZED)
            .then(|| response.headers().get(WWW_AUTHENTICATE))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        drop(response);
        let Some(challenge) = challenge else {
            return Ok(());
        };
        let challenges = http_auth::parse_challenges(&challenge)
            .map_err(|e| failure(format!("{url}: a challenge that does not parse: {e}")))?;
        let Some(bearer) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        else {
            return Ok(());
        };
        let param = |name: &str| {
            bearer
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        let realm = param("realm")
            .ok_or_else(|| failure(format!("{url}: a bearer challenge without a realm")))?;
        let mut realm: Url = realm.parse().map_err(|e| {
            failure(format!(
                "{url}: the token realm {realm:?} is not a URL: {e}"
            ))
        })?;
        if !reachable(&realm, self.loopback) {
            return Err(failure(format!(
                "{}: the token realm {realm} is refused: tokens are fetched over HTTPS only (plain HTTP only from a loopback registry to a loopback host)",
                reference.whole()
            )));
        }
        let actions = match operation {
            Operation::Pull => "pull",
            Operation::Push => "pull,push",
        };
        {
            let mut query = realm.query_pairs_mut();
            query.append_pair(
                "scope",
                &format!("repository:{}:{actions}", reference.repository()),
            );
            if let Some(service) = param("service") {
                query.append_pair("service", &service);
            }
        }
        let mut request = self.http.get(realm.clone());
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = send(request, &realm).await?;
        if !response.status().is_success() {
            return Err(refusal(response, "fetching a token").await);
        }
        let body = read_bounded(response, MAX_TOKEN_BYTES, "the token answer").await?;
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| failure(format!("{realm}: the token answer is not JSON: {e}")))?;
        let token = ["token", "access_token"]
            .iter()
            .find_map(|k| answer.get(k).and_then(|t| t.as_str()))
            .ok_or_else(|| failure(format!("{realm}: the token answer holds no token")))?;
        self.authorization = Authorization::Bearer(token.to_owned());
        Ok(())
    }

    /// The manifest `reference` names, as its bytes and digest: read at
    /// most [`MAX_MANIFEST_BYTES`] (a registry sending more is refused
    /// before more is read), checked against the reference's digest if it
    /// has one.
    pub(crate) async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Vec<u8>, Sha256Digest), Failure> {
        let version = reference.digest().or(reference.tag()).unwrap_or("latest");
        let url = self.url(&format!(
            "/v2/{}/manifests/{version}",
            reference.repository()
        ))?;
        let request = self
            .request(Method::GET, url.clone())
            .header(reqwest::header::ACCEPT, MANIFEST_MEDIA_TYPE);
        let response = send(request, &url).await?;
        if !response.status().is_success() {
            return Err(refusal(response, "fetching the manifest").await);
        }
        let body = read_bounded(response, MAX_MANIFEST_BYTES, "the manifest").await?;
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

    /// The answer to a download of the blob `digest` from the registry,
    /// its body unread. A layer's `urls` are never used: the blob comes
    /// from the registry (or where it redirects to), or not at all.
    pub(crate) async fn blob(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<Response, Failure> {
        let url = self.blob_url(reference, digest)?;
        let response = send(self.request(Method::GET, url.clone()), &url).await?;
        if !response.status().is_success() {
            return Err(refusal(response, "fetching the layer").await);
        }
        Ok(response)
    }

    /// Whether the registry has the blob `digest` in `reference`'s repository.
    pub(crate) async fn blob_exists(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<bool, Failure> {
        let url = self.blob_url(reference, digest)?;
        let response = send(self.request(Method::HEAD, url.clone()), &url).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(refusal(response, "looking for the layer").await),
        }
    }

    /// Uploads `body` (`len` bytes) as the blob `digest`: a session opened
    /// by POST, the bytes sent by one PUT to the location it names, which
    /// must be on the registry (a push sends nothing elsewhere).
    pub(crate) async fn push_blob(
        &self,
        reference: &Reference,
        digest: &str,
        body: reqwest::Body,
        len: u64,
    ) -> Result<(), Failure> {
        let url = self.url(&format!("/v2/{}/blobs/uploads/", reference.repository()))?;
        let request = self
            .request(Method::POST, url.clone())
            .header(CONTENT_LENGTH, 0);
        let response = send(request, &url).await?;
        if !response.status().is_success() {
            return Err(refusal(response, "starting an upload").await);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| failure(format!("{url}: no upload location in the answer")))?;
        let mut location = response
            .url()
            .join(location)
            .map_err(|e| failure(format!("{url}: the upload location is not a URL: {e}")))?;
        drop(response);
        if location.origin() != self.origin.origin() {
            return Err(failure(format!(
                "{url}: the upload location {location} is off the registry; refused (a push sends only to {})",
                self.origin
            )));
        }
        location.query_pairs_mut().append_pair("digest", digest);
        let request = self
            .request(Method::PUT, location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(body);
        let response = send(request, &location).await?;
        if !response.status().is_success() {
            return Err(refusal(response, "uploading a blob").await);
        }
        Ok(())
    }

    /// Puts the manifest `body` under `reference`'s tag.
    pub(crate) async fn push_manifest(
        &self,
        reference: &Reference,
        body: Vec<u8>,
    ) -> Result<(), Failure> {
        let tag = reference.tag().unwrap_or("latest");
        let url = self.url(&format!("/v2/{}/manifests/{tag}", reference.repository()))?;
        let request = self
            .request(Method::PUT, url.clone())
            .header(CONTENT_TYPE, MANIFEST_MEDIA_TYPE)
            .body(body);
        let response = send(request, &url).await?;
        if !response.status().is_success() {
            return Err(refusal(response, "putting the manifest").await);
        }
        Ok(())
    }
}

/// Sends `request` (to `url`), failing with its causes.
async fn send(request: RequestBuilder, url: &Url) -> Result<Response, Failure> {
    request
        .send()
        .await
        .map_err(|e| failure(format!("fetching {url}: {}", with_causes(&e))))
}

/// `response`'s body, at most `limit` bytes: an answer announcing or
/// sending more fails, naming `what` and the limit, and no more is read.
async fn read_bounded(
    mut response: Response,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    let url = response.url().clone();
    let too_large = || {
        failure(format!(
            "{url}: {what} is larger than {limit} bytes; refused"
        ))
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failure(format!("reading {url}: {}", with_causes(&e))))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error an unsuccessful answer makes: `what` failed, its status, and
/// the start of its body (no more than [`MAX_ERROR_BYTES`] is read).
async fn refusal(mut response: Response, what: &str) -> Failure {
    let url = response.url().clone();
    let status = response.status();
    let mut body = Vec::new();
    let mut cut = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(chunk.get(..room).unwrap_or_default());
            cut = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    let shown: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(SHOWN_ERROR_CHARS)
        .collect();
    let mut message = format!("{what}: {url} answered {status}");
    if !shown.is_empty() {
        message.push_str(&format!(": {shown}"));
    }
    if cut {
        message.push_str(&format!(
            " (cut off: read no further than {MAX_ERROR_BYTES} bytes)"
        ));
    }
    failure(message)
}

/// Credentials for `host` from `$DOCKER_CONFIG/config.json` (else
/// `~/.docker/config.json`): its `auths` entry (or credential helper) as
/// a user and password; none if there is no config, no entry for the host
/// or a helper with nothing for it. An identity token (an OAuth refresh
/// token) is not supported: none.
fn credentials(host: &str) -> Result<Option<(String, String)>, Failure> {
    match docker_credential::get_credential(host) {
        Ok(DockerCredential::UsernamePassword(user, password)) => Ok(Some((user, password))),
        // No config, no entry, or a helper that has nothing for the host
        // (helpers answer "credentials not found" with a failure).
        Ok(DockerCredential::IdentityToken(_))
        | Err(
            CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::ConfigReadError
            | CredentialRetrievalError::NoCredentialConfigured
            | CredentialRetrievalError::HelperFailure { .. },
        ) => Ok(None),
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

    #[test]
    fn reachable_urls() {
        let url = |u: &str| u.parse::<Url>().expect(u);
        for from_loopback in [false, true] {
            assert!(reachable(&url("https://auth.example/token"), from_loopback));
            assert!(!reachable(&url("http://auth.example/token"), from_loopback));
            assert!(!reachable(&url("ftp://127.0.0.1/x"), from_loopback));
        }
        for loopback in [
            "http://127.0.0.1:5000/t",
            "http://[::1]/t",
            "http://localhost/t",
        ] {
            assert!(reachable(&url(loopback), true), "{loopback}");
            assert!(!reachable(&url(loopback), false), "{loopback}");
        }
    }
}
