//! sha256 aliases through the library, on every backend: recorded only for
//! content whose digest was checked, resolved only while the artifact
//! exists, collected by gc.

use std::sync::Mutex;

use artifacts::backend::Backend;
use artifacts::backend::{Side, SideKind};
use artifacts::sha256::Sha256Digest;
use artifacts::{ArtifactStore, ArtifactType, Error, Hash};

use crate::fixture::{each_backend, pattern};
use crate::watched::{Watch, Watched};

each_backend! {
    fn sha256_aliases_resolve_while_their_artifact_lives(fx) {
        let store = fx.open();
        // Streamed in (a pull): over 4 MiB, so it is staged in pieces.
        let big = pattern((4 << 20) + 777);
        let digest = Sha256Digest::of(&big);
        assert_eq!(store.resolve_sha256(&digest).unwrap(), None);
        let mut upload = store.upload_sha256(digest, ArtifactType::WasmModule);
        for piece in big.chunks(100_000) {
            upload.write(piece).unwrap();
        }
        let hash = upload.finish().unwrap();
        assert_eq!(hash, Hash::of(&big));
        assert_eq!(store.resolve_sha256(&digest).unwrap(), Some(hash));

        // Other content under that digest: refused, naming both, nothing stored.
        let count = store.count().unwrap();
        let other = pattern(1000);
        let mut upload = store.upload_sha256(digest, ArtifactType::WasmModule);
        upload.write(&other).unwrap();
        assert_eq!(
            upload.finish(),
            Err(Error::Sha256Mismatch { expected: digest, actual: Sha256Digest::of(&other) })
        );
        assert_eq!(store.count().unwrap(), count);
        assert!(!store.contains(&Hash::of(&other)).unwrap());

        // Recorded on the way out (a push), streamed or from content in hand;
        // content in hand that is not the artifact's is refused.
        let small = store.put(b"\0asm\x01\0\0\0", ArtifactType::WasmModule).unwrap();
        let small_digest = store.alias_sha256(&small).unwrap();
        assert_eq!(small_digest, Sha256Digest::of(b"\0asm\x01\0\0\0"));
        assert_eq!(store.alias_sha256_of(&small, b"\0asm\x01\0\0\0").unwrap(), small_digest);
        assert!(matches!(
            store.alias_sha256_of(&small, b"not it"),
            Err(Error::Integrity { .. })
        ));
        assert_eq!(store.resolve_sha256(&small_digest).unwrap(), Some(small));

        // Released to nothing: the alias resolves to nothing at once, and gc
        // deletes it (and only it).
        assert_eq!(store.release(&hash).unwrap(), 0);
        assert_eq!(store.resolve_sha256(&digest).unwrap(), None);
        let report = store.gc(std::time::Duration::ZERO).unwrap();
        assert_eq!(report.aliases_removed, 1);
        assert_eq!(aliases(&*fx.backend()), vec![small_digest]);
        assert_eq!(store.resolve_sha256(&small_digest).unwrap(), Some(small));
        // Stored again: the alias comes back with the next pull.
        let mut upload = store.upload_sha256(digest, ArtifactType::WasmModule);
        upload.write(&big).unwrap();
        assert_eq!(upload.finish().unwrap(), hash);
        assert_eq!(store.resolve_sha256(&digest).unwrap(), Some(hash));
    }
}

/// Runs a pull (through another store over the same backend, as another
/// process would) just before the next alias delete of a [`Watched`]
/// backend.
#[derive(Default)]
struct PullBeforeDelete {
    pull: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Watch for PullBeforeDelete {
    fn side(&self, name: &'static str, key: &Side) {
        if name == "delete_side" && matches!(key, Side::Alias(_)) {
            let pull = self.pull.lock().unwrap().take();
            if let Some(pull) = pull {
                pull();
            }
        }
    }
}

each_backend! {
    fn a_pull_racing_gc_keeps_its_alias(fx) {
        let content = pattern(70_000);
        let digest = Sha256Digest::of(&content);
        let mut upload = fx.open().upload_sha256(digest, ArtifactType::WasmModule);
        upload.write(&content).unwrap();
        let hash = upload.finish().unwrap();
        let racing = Watched::new(fx.backend(), PullBeforeDelete::default());
        let store = ArtifactStore::builder().open(racing.clone()).unwrap();
        assert_eq!(store.release(&hash).unwrap(), 0);
        assert_eq!(store.resolve_sha256(&digest).unwrap(), None);

        // gc finds the alias's artifact gone; before it deletes the alias,
        // another process pulls the same content again (storing it and
        // writing its alias).
        let other = fx.open();
        let content_again = content.clone();
        *racing.watch.pull.lock().unwrap() = Some(Box::new(move || {
            let mut upload = other.upload_sha256(digest, ArtifactType::WasmModule);
            upload.write(&content_again).unwrap();
            assert_eq!(upload.finish().unwrap(), Hash::of(&content_again));
        }));
        let report = store.gc(std::time::Duration::ZERO).unwrap();
        assert!(racing.watch.pull.lock().unwrap().is_none(), "the pull ran during gc");
        assert_eq!(report.aliases_removed, 0);
        assert_eq!(store.resolve_sha256(&digest).unwrap(), Some(hash));
        assert_eq!(fx.open().resolve_sha256(&digest).unwrap(), Some(hash));
        // And with no pull racing it, gc removes an alias whose artifact is gone.
        assert_eq!(store.release(&hash).unwrap(), 0);
        assert_eq!(store.gc(std::time::Duration::ZERO).unwrap().aliases_removed, 1);
        assert_eq!(aliases(&racing), vec![]);
    }
}

/// The aliases `backend` keeps, in order.
fn aliases(backend: &dyn Backend) -> Vec<Sha256Digest> {
    backend
        .list_side(SideKind::Alias, None, 10)
        .unwrap()
        .into_iter()
        .filter_map(|i| match i.key {
            Side::Alias(digest) => Some(digest),
            _ => None,
        })
        .collect()
}
