//! `artifacts push` and `artifacts pull`: components through OCI registries.
//!
//! Pull reads the manifest (at most 4 MiB), insists on exactly one
//! `application/wasm` layer no larger than the store's limit, and streams
//! it from the registry (never from the layer's `urls`) through a sha256
//! hasher into a [`Sha256Upload`](artifacts::sha256::Sha256Upload): the content is
//! stored only if its digest is the layer's, so nothing unverified is ever
//! stored. Every read from the registry is bounded ([`super::registry`]).
//! The async client runs on a runtime of its
//! own, one step at a time (`block_on`), and every store call happens
//! between steps, outside it (the S3 backend blocks on a runtime of its own).

use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use artifacts::sha256::Sha256Digest;
use artifacts::{ArtifactStore, ArtifactType, Error, Hash};
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use oci_client::Reference;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use tokio::runtime::Runtime;

use super::registry::{
    MANIFEST_MEDIA_TYPE, Operation, Registry, WASM_LAYER_MEDIA_TYPE, failure, parse_reference,
    with_causes,
};
use super::wasm_config::{WasmKind, config, manifest};
use crate::{Failure, hash_arg, io_context};

/// The pieces a push sends the layer in.
const PUSH_CHUNK: usize = 1 << 20;

/// `artifacts push`.
#[derive(Args)]
pub(crate) struct PushArgs {
    /// The artifact: its hash, `sha256:HEX` of content pushed or pulled
    /// before, or one of the host's names (`artifacts tag`).
    artifact: String,
    /// Where: `oci://HOST/REPO:TAG` (plain HTTP only for 127.0.0.1, ::1
    /// and localhost).
    target: String,
    /// Give up after this many seconds in all (however slowly the
    /// registry answers).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    timeout: u64,
}

/// `artifacts pull`.
#[derive(Args)]
pub(crate) struct PullArgs {
    /// What: `oci://HOST/REPO:TAG` or `oci://HOST/REPO@sha256:HEX`.
    source: String,
    /// Also point this host name (`artifacts tag`) at the pulled artifact.
    #[arg(long)]
    name: Option<String>,
    /// Give up after this many seconds in all (however slowly the
    /// registry answers); nothing is stored then.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    timeout: u64,
}

/// How long a push or pull may take in all, unless `--timeout` says.
const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// The artifact a command-line argument names: a hash (64 hex digits or
/// `blake3:HEX`), a sha256 alias (`sha256:HEX`), or else a host name.
pub(crate) fn artifact_arg(store: &ArtifactStore, text: &str) -> Result<Hash, Failure> {
    if text.starts_with(Sha256Digest::PREFIX) {
        return super::alias::alias_arg(store, text);
    }
    if let Ok(hash) = text.parse::<Hash>() {
        return Ok(hash);
    }
    match store.names().get(text)? {
        Some(hash) => Ok(hash),
        None if text.len() == Hash::HEX_LEN => hash_arg(text),
        None => Err(Failure::NoName(text.to_owned())),
    }
}

/// The network side of one command: a runtime, and the time by which the
/// whole command gives up (a registry trickling bytes cannot hold it
/// forever: the per-read timeout alone would let it).
struct Network {
    rt: Runtime,
    deadline: std::time::Instant,
    limit: std::time::Duration,
}

impl Network {
    fn new(timeout_secs: u64) -> Result<Self, Failure> {
        let limit = std::time::Duration::from_secs(timeout_secs);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_context("starting the network runtime"))?;
        Ok(Self {
            rt,
            deadline: std::time::Instant::now() + limit,
            limit,
        })
    }

    /// Runs `step` to completion, or fails once the deadline has passed.
    fn run<F: std::future::Future>(&self, what: &str, step: F) -> Result<F::Output, Failure> {
        let deadline = tokio::time::Instant::from_std(self.deadline);
        self.rt
            .block_on(async { tokio::time::timeout_at(deadline, step).await })
            .map_err(|_| {
                failure(format!(
                    "{what}: gave up after {} s (--timeout); nothing was stored",
                    self.limit.as_secs()
                ))
            })
    }
}

/// A progress bar over `len` bytes on a terminal, else a hidden one.
fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(what.to_owned());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `artifacts push ARTIFACT oci://HOST/REPO:TAG`: publishes a stored wasm
/// binary as a wasm OCI artifact and prints the manifest's digest.
pub(crate) fn push(
    store: &ArtifactStore,
    args: PushArgs,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let reference = parse_reference(&args.target)?;
    if reference.digest().is_some() {
        return Err(Failure::Usage(
            "push needs a tag (oci://HOST/REPO:TAG): the registry names the manifest's digest"
                .into(),
        ));
    }
    let hash = artifact_arg(store, &args.artifact)?;
    // Verified as it is read; held once (a component is small, and the
    // store's limit bounds it) to describe it and send it.
    let content = store.get(&hash)?;
    let kind = WasmKind::of(&content).ok_or_else(|| {
        Failure::Usage(format!(
            "{hash} is not a wasm binary: only components and modules are pushed"
        ))
    })?;
    let digest = Sha256Digest::of(&content);
    let now = SystemTime::now();
    let config = config(&content, kind, &digest, now)?;
    let manifest = manifest(&config, &digest, content.len() as u64, now);
    let mut registry = Registry::for_reference(&reference)?;
    let net = Network::new(args.timeout)?;
    let what = format!("pushing to {}", reference.whole());
    net.run(&what, registry.authenticate(&reference, Operation::Push))??;
    let size = content.len() as u64;
    let layer = bytes::Bytes::from(content);
    let layer_digest = digest.to_string();
    if !net.run(&what, registry.blob_exists(&reference, &layer_digest))?? {
        let bar = progress(size, "push");
        let chunks: Vec<bytes::Bytes> = (0..layer.len())
            .step_by(PUSH_CHUNK)
            .map(|at| layer.slice(at..(at + PUSH_CHUNK).min(layer.len())))
            .collect();
        let counted = bar.clone();
        let stream = futures::stream::iter(chunks).map(move |chunk| {
            counted.inc(chunk.len() as u64);
            Ok::<_, std::io::Error>(chunk)
        });
        let body = reqwest::Body::wrap_stream(stream);
        net.run(
            &what,
            registry.push_blob(&reference, &layer_digest, body, size),
        )??;
        bar.finish_and_clear();
    }
    let config_digest = Sha256Digest::of(&config).to_string();
    let config_len = config.len() as u64;
    net.run(
        &what,
        registry.push_blob(&reference, &config_digest, config.into(), config_len),
    )??;
    let manifest_digest = Sha256Digest::of(&manifest);
    net.run(&what, registry.push_manifest(&reference, manifest))??;
    store.alias_sha256_of(&hash, &layer)?;
    writeln!(out, "{manifest_digest}").map_err(io_context("writing to standard output"))
}

/// `artifacts pull oci://…`: stores the artifact's one wasm layer, verified
/// against its sha256 digest while it streams in, and prints its hash.
pub(crate) fn pull(
    store: &ArtifactStore,
    args: PullArgs,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let reference = parse_reference(&args.source)?;
    // A name the core would refuse is refused before anything is fetched
    // or stored (looking it up runs the core's name check).
    if let Some(name) = &args.name {
        store.names().get(name)?;
    }
    let mut registry = Registry::for_reference(&reference)?;
    let net = Network::new(args.timeout)?;
    let what = format!("pulling {}", reference.whole());
    net.run(&what, registry.authenticate(&reference, Operation::Pull))??;
    let (bytes, _) = net.run(&what, registry.manifest(&reference))??;
    let layer = wasm_layer(&bytes, &reference, store.max_artifact_bytes())?;
    let expected: Sha256Digest = layer.digest.parse().map_err(|_| {
        failure(format!(
            "{}: the layer's digest {:?} is not sha256",
            reference.whole(),
            layer.digest
        ))
    })?;
    let size = u64::try_from(layer.size).unwrap_or_default();
    let mut response = net.run(&what, registry.blob(&reference, &expected.to_string()))??;
    if response.content_length().is_some_and(|n| n > size) {
        return Err(failure(format!(
            "{}: the registry announces more than the layer's {size} bytes; nothing was stored",
            reference.whole()
        )));
    }
    let bar = progress(size, "pull");
    let mut upload = store.upload_sha256(expected, ArtifactType::WasmModule);
    let mut preamble = Vec::with_capacity(8);
    // Each piece: received in the runtime, written to the store outside it.
    while let Some(piece) = net.run(&what, response.chunk())?.map_err(|e| {
        failure(format!(
            "pulling {}: {}",
            reference.whole(),
            with_causes(&e)
        ))
    })? {
        if upload.written() + piece.len() as u64 > size {
            return Err(failure(format!(
                "{}: the registry sent more than the layer's {size} bytes; nothing was stored",
                reference.whole()
            )));
        }
        let room = 8usize.saturating_sub(preamble.len());
        preamble.extend_from_slice(piece.get(..room.min(piece.len())).unwrap_or_default());
        upload.write(&piece)?;
        bar.inc(piece.len() as u64);
    }
    bar.finish_and_clear();
    if upload.written() != size {
        return Err(failure(format!(
            "{}: the registry sent {} of the layer's {size} bytes; nothing was stored",
            reference.whole(),
            upload.written()
        )));
    }
    upload.check()?;
    if WasmKind::of(&preamble).is_none() {
        return Err(failure(format!(
            "{}: the layer is not a wasm binary; nothing was stored",
            reference.whole()
        )));
    }
    let hash = upload.finish()?;
    if let Some(name) = &args.name {
        store.names().set(name, &hash)?;
    }
    writeln!(out, "{}", super::digest::shown(&hash))
        .map_err(io_context("writing to standard output"))
}

/// The one wasm layer of the image manifest `bytes`: exactly one layer,
/// of media type `application/wasm`, no larger than `limit`.
fn wasm_layer(bytes: &[u8], reference: &Reference, limit: u64) -> Result<OciDescriptor, Failure> {
    let whole = reference.whole();
    let manifest: OciImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| failure(format!("{whole}: not an OCI image manifest: {e}")))?;
    if manifest
        .media_type
        .as_deref()
        .is_some_and(|t| t != MANIFEST_MEDIA_TYPE)
    {
        return Err(failure(format!(
            "{whole}: a manifest of type {:?}, not an OCI image manifest",
            manifest.media_type.unwrap_or_default()
        )));
    }
    let [layer] = <[OciDescriptor; 1]>::try_from(manifest.layers).map_err(|layers| {
        failure(format!(
            "{whole}: the manifest has {} layers; a wasm artifact has exactly one",
            layers.len()
        ))
    })?;
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(failure(format!(
            "{whole}: the layer is {:?}, not {WASM_LAYER_MEDIA_TYPE}",
            layer.media_type
        )));
    }
    let size = u64::try_from(layer.size)
        .map_err(|_| failure(format!("{whole}: the layer has a negative size")))?;
    if size > limit {
        return Err(Error::TooLarge { size, limit }.into());
    }
    Ok(layer)
}
