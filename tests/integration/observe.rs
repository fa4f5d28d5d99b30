//! Digests, tracing spans and health, through the library: `blake3:<hex>`
//! wherever a hash is taken (the app boundary too), a span per operation
//! with its fields seen by a collecting subscriber, and `health()` on every
//! backend (a read-only file backend through the Fs trait).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use artifacts::backend::Side;
use artifacts::backend::fs::{Fs, StdFs};
use artifacts::backend::{Backend, Note};
use artifacts::{ArtifactStore, ArtifactType, FileBackend, Hash};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::fixture::{each_backend, pattern};

/// A closed span: its name and fields as text.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    fields: BTreeMap<String, String>,
}

thread_local! {
    /// Where this thread's spans go while [`collect`] runs on it.
    static COLLECTING: RefCell<Option<Vec<Seen>>> = const { RefCell::new(None) };
}

/// A layer that keeps the fields of the spans of threads that are
/// collecting, and hands them over on close. It is installed once, as the
/// global subscriber of this test binary: scoped subscribers
/// (`with_default`) race in tracing's callsite registry when tests run in
/// parallel (a callsite first reached by a thread without one, while only
/// one scoped subscriber is alive, is cached as uninteresting to all).
/// Threads that are not collecting see their spans disabled at the
/// per-span `enabled` check.
struct Collect;

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.to_string());
    }
}

fn collecting() -> bool {
    COLLECTING.with(|c| c.borrow().is_some())
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Collect {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>, _: Context<'_, S>) -> bool {
        collecting()
    }
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            let fields = span
                .extensions_mut()
                .remove::<Fields>()
                .map_or_else(BTreeMap::new, |f| f.0);
            let seen = Seen {
                name: span.name().into(),
                fields,
            };
            COLLECTING.with(|c| c.borrow_mut().as_mut().map(|all| all.push(seen)));
        }
    }
}

/// Runs `body` collecting the spans it closes on this thread.
fn collect(body: impl FnOnce()) -> Vec<Seen> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(Collect);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    COLLECTING.with(|c| *c.borrow_mut() = Some(Vec::new()));
    body();
    COLLECTING
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default()
}

fn only<'a>(seen: &'a [Seen], name: &str) -> &'a Seen {
    let found: Vec<&Seen> = seen.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "{name}: {seen:#?}");
    found[0]
}

fn field<'a>(span: &'a Seen, name: &str) -> &'a str {
    span.fields
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no field {name} in {span:?}"))
}

each_backend! {
    fn a_span_per_put_and_get_with_hash_bytes_owner_and_outcome(fx) {
        let store = fx.open();
        let content = pattern(1024);
        let mut hash = None;
        let seen = collect(|| {
            let h = store.put(&content, ArtifactType::Generic).unwrap();
            assert_eq!(store.get(&h).unwrap(), content);
            assert!(store.get(&Hash::of(b"absent")).is_err());
            hash = Some(h);
        });
        let hash = hash.unwrap().to_string();
        let put = only(&seen, "put");
        assert_eq!(field(put, "operation"), "put");
        assert_eq!(field(put, "owner"), "@host");
        assert_eq!(field(put, "hash"), hash);
        assert_eq!(field(put, "bytes"), "1024");
        assert_eq!(field(put, "outcome"), "ok");
        assert!(field(put, "duration_us").parse::<u64>().is_ok());
        let gets: Vec<&Seen> = seen.iter().filter(|s| s.name == "get").collect();
        assert_eq!(gets.len(), 2, "{seen:#?}");
        assert_eq!(field(gets[0], "hash"), hash);
        assert_eq!(field(gets[0], "bytes"), "1024");
        assert_eq!(field(gets[0], "outcome"), "ok");
        assert_eq!(field(gets[1], "hash"), Hash::of(b"absent").to_string());
        assert_eq!(field(gets[1], "outcome"), "not-found");
        assert!(!gets[1].fields.contains_key("bytes"));

        // Streams: an upload's span has its bytes and the hash it stored,
        // a download's the size it will hand over.
        let seen = collect(|| {
            let mut up = store.upload(ArtifactType::Generic);
            up.write(&content).unwrap();
            up.finish().unwrap();
            store.download(&Hash::of(&content)).unwrap();
        });
        let upload = only(&seen, "upload");
        assert_eq!((field(upload, "hash"), field(upload, "bytes")), (hash.as_str(), "1024"));
        assert_eq!(field(upload, "outcome"), "ok");
        let download = only(&seen, "download");
        assert_eq!((field(download, "hash"), field(download, "bytes")), (hash.as_str(), "1024"));
    }

    fn health_reports_counts_gc_and_a_probe_that_leaves_nothing(fx) {
        let store = fx.open();
        let report = store.health().unwrap();
        assert!(report.healthy, "{report:?}");
        assert!(report.backend.reachable && report.backend.writable);
        assert_eq!((report.artifacts, report.total_bytes), (Some(0), Some(0)));
        assert_eq!(report.last_gc, None, "no gc has run");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let a = store.put(&pattern(1000), ArtifactType::Generic).unwrap();
        store.put(&pattern(3000), ArtifactType::Generic).unwrap();
        store.app("app-1", artifacts::Quota::default()).unwrap()
            .put(b"app data", ArtifactType::Generic).unwrap();
        store.names().set("latest", &a).unwrap();
        // A blob no record references, old enough for gc to remove.
        fx.backend().write_blob(&Hash::of(b"orphan"), b"orphan").unwrap();
        for _ in 0..3 {
            assert!(store.health().unwrap().healthy);
        }
        let gc = store.gc(Duration::ZERO).unwrap();
        assert_eq!(gc.orphans_removed, 1, "the orphan, and no probe was left: {gc:?}");
        let report = store.health().unwrap();
        assert_eq!(report.artifacts, Some(3));
        assert_eq!(report.total_bytes, Some(4008));
        assert_eq!(report.owners, Some(2), "app-1 and the host's names");
        let last = report.last_gc.expect("gc recorded what it did");
        assert_eq!(last.report, gc);
        assert_eq!(last.grace_ms, 0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!(now.as_millis() as u64 - last.finished_at < 60_000, "{last:?}");
        // Recorded durably: a store opened again reads it.
        assert_eq!(fx.open().health().unwrap().last_gc, Some(last));
        // Nothing of the probes is left for the next gc either.
        assert_eq!(store.gc(Duration::ZERO).unwrap().orphans_removed, 0);
        assert_eq!(fx.backend().list_blobs(None, 100).unwrap().len(), 3);
    }
}

/// An app passing `blake3:<hex>` through the WIT store interface gets what
/// the bare hex gets: the hostile app's `other HASH` expects `not-found`
/// from every call on another app's artifact (an `invalid-hash` would fail
/// it), so the digest form crossed the app boundary as the same hash.
#[cfg(feature = "apps")]
#[test]
fn an_app_may_name_artifacts_in_the_digest_form() {
    use artifacts::apps::{AppConfig, AppHost};
    const HOSTILE: &[u8] = include_bytes!("../apps/hostile.wasm");
    let store = ArtifactStore::open_memory().unwrap();
    let theirs = store
        .app("app-other", artifacts::Quota::default())
        .unwrap()
        .put(b"not yours", ArtifactType::Generic)
        .unwrap();
    let host = AppHost::new(store.clone()).unwrap();
    let app = host.load_file(HOSTILE).unwrap();
    let run = |hash: String| {
        let mut config = AppConfig::new("hostile");
        config.args = vec!["other".into(), hash];
        host.run(&app, &config).unwrap()
    };
    let mut out = None;
    let seen = collect(|| out = Some(run(format!("blake3:{theirs}"))));
    let out = out.unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    // The run's span, and its app's store calls inside it under its owner.
    let span = only(&seen, "run");
    assert_eq!(field(span, "owner"), "hostile");
    assert_eq!(field(span, "hash"), app.hash().to_string());
    assert_eq!(
        (field(span, "outcome"), field(span, "exit_code")),
        ("ok", "0")
    );
    let get = only(&seen, "get");
    assert_eq!(field(get, "owner"), "hostile");
    assert_eq!(field(get, "hash"), theirs.to_string());
    assert_eq!(field(get, "outcome"), "not-found");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "other app's artifact invisible"
    );
    // Any other prefix is not a hash: the app gets invalid-hash and says so.
    let out = run(format!("sha256:{theirs}"));
    assert_ne!(out.exit_code, 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidHash"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Files as the real filesystem has them, but every write refused, as on
/// a read-only mount (root ignores directory permissions, so the tests
/// cannot rely on chmod).
#[derive(Clone, Copy)]
struct ReadOnly;

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::ReadOnlyFilesystem, "read-only file system")
}

impl Fs for ReadOnly {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        StdFs.read(path)
    }
    fn write_new_synced(&self, _: &Path, _: &[u8]) -> io::Result<()> {
        Err(refused())
    }
    fn create_new(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn append(&self, _: &Path, _: &[u8]) -> io::Result<()> {
        Err(refused())
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_file(path)
    }
    fn hard_link(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn remove_file(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn create_dir(&self, path: &Path) -> io::Result<bool> {
        if path.is_dir() {
            Ok(false)
        } else {
            Err(refused())
        }
    }
    fn remove_dir(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn stat(&self, path: &Path) -> io::Result<(u64, std::time::SystemTime)> {
        StdFs.stat(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send>> {
        StdFs.lock(path)
    }
}

#[test]
fn a_read_only_file_store_is_unhealthy_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    store.put(b"kept", ArtifactType::Generic).unwrap();
    store.gc(Duration::from_secs(3600)).unwrap();
    drop(store);
    let ro = FileBackend::open_with(dir.path(), ReadOnly).unwrap();
    let store = ArtifactStore::builder().open(ro).unwrap();
    let report = store.health().unwrap();
    assert!(!report.healthy, "{report:?}");
    assert!(report.backend.reachable && !report.backend.writable);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("writing a probe blob") && p.contains("read-only")),
        "{:?}",
        report.problems
    );
    assert_eq!(report.artifacts, Some(1), "what can be read still is");
    assert!(report.last_gc.is_some());
}

#[test]
fn quarantined_blobs_are_listed_and_a_damaged_note_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    let hash = store.put(&pattern(5000), ArtifactType::Generic).unwrap();
    std::fs::write(
        FileBackend::open(dir.path()).unwrap().blob_path(&hash),
        b"damaged",
    )
    .unwrap();
    assert!(store.verify(&hash).is_err());
    assert!(store.quarantine(&hash).unwrap());
    let report = store.health().unwrap();
    assert!(report.healthy, "quarantine is reported, not a failure");
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].hash, hash);
    assert_eq!(report.quarantined[0].size, 7);
    FileBackend::open(dir.path())
        .unwrap()
        .write_side(&Side::Note(Note::LastGc), b"not a record")
        .unwrap();
    let report = store.health().unwrap();
    assert_eq!(report.last_gc, None);
    assert!(
        report.problems.iter().any(|p| p.contains("last gc")),
        "{:?}",
        report.problems
    );
}
