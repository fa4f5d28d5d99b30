//! Uploads and downloads (the WIT `streams`): content larger than memory a
//! piece at a time, stored only when finished, read only once verified, on
//! each backend.

use artifacts::{ArtifactType, Error, Hash, Quota, QuotaKind};

use crate::fixture::{each_backend, pattern};

const MIB: usize = 1 << 20;

each_backend! {
    fn uploads_store_exactly_what_was_written_at_every_piece_boundary(fx) {
        let store = fx.open();
        for len in [0, 1, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1, 8 * MIB, 17 * MIB + 3] {
            let content = pattern(len);
            let mut up = store.upload(ArtifactType::Generic);
            // Writes that straddle the pieces.
            for part in content.chunks(3 * MIB + 7) {
                up.write(part).unwrap();
            }
            assert_eq!(up.written(), len as u64);
            let hash = up.finish().unwrap();
            assert_eq!(hash, Hash::of(&content), "{len} bytes");
            assert_eq!(store.get(&hash).unwrap().len(), len);
            let mut down = store.download(&hash).unwrap();
            let mut back = Vec::new();
            while let Some(bytes) = down.read(MIB + 1).unwrap() {
                assert!(bytes.len() <= MIB + 1);
                back.extend(bytes);
            }
            assert!(back == content, "{len} bytes read back");
        }
        assert!(fx.temporary_files().is_empty(), "no staging left");
    }

    fn an_unfinished_or_refused_upload_stores_nothing(fx) {
        let store = fx.open();
        let mut up = store.upload(ArtifactType::Generic);
        up.write(&pattern(9 * MIB)).unwrap();
        drop(up);
        assert_eq!(store.count().unwrap(), 0);
        let app = store
            .app("app-1", Quota { max_artifact_bytes: 6 << 20, ..Quota::default() })
            .unwrap();
        let mut up = app.upload(ArtifactType::Generic);
        up.write(&pattern(5 * MIB)).unwrap();
        assert_eq!(
            up.write(&pattern(2 * MIB)),
            Err(Error::QuotaExceeded {
                kind: QuotaKind::ArtifactBytes,
                limit: 6 << 20,
                requested: 7 << 20,
            })
        );
        assert!(up.write(b"x").is_err(), "spent");
        assert!(up.finish().is_err());
        assert_eq!(store.count().unwrap(), 0);
        assert!(fx.temporary_files().is_empty(), "its staging was discarded");
    }

    fn a_download_hands_over_no_byte_of_a_damaged_piece(fx) {
        let store = fx.open();
        let content = pattern(20 * MIB + 5);
        let hash = store.put(&content, ArtifactType::Generic).unwrap();
        // Damaged before it is opened: refused at once.
        let mut bad = content.clone();
        bad[19 * MIB] ^= 1;
        fx.tamper(&hash, &bad);
        assert_eq!(
            store.download(&hash).unwrap_err(),
            Error::Integrity { expected: hash, actual: Hash::of(&bad) }
        );
        // Damaged while it is read (after the first pass): the pieces before
        // the damage come out whole; the damaged one fails, none of it out.
        fx.tamper(&hash, &content);
        let mut down = store.download(&hash).unwrap();
        let mut back = Vec::new();
        for _ in 0..2 {
            back.extend(down.read(4 * MIB).unwrap().unwrap());
        }
        assert!(back == content[..8 * MIB], "two good pieces");
        let mut bad = content.clone();
        bad[9 * MIB] ^= 1;
        fx.tamper(&hash, &bad);
        assert_eq!(
            down.read(4 * MIB),
            Err(Error::Integrity { expected: hash, actual: Hash::of(&bad) }),
            "the third piece (8-12 MiB) changed"
        );
        // Damage outside what is read later does not matter to what came out.
        fx.tamper(&hash, &content);
        let mut down = store.download(&hash).unwrap();
        let first = down.read(MIB).unwrap().unwrap();
        assert!(first == content[..MIB]);
        fx.lose_blob(&hash);
        for _ in 0..3 {
            assert!(down.read(MIB).unwrap().is_some(), "the piece in hand was verified already");
        }
        assert_eq!(down.read(MIB), Err(Error::MissingContent(hash)));
    }

    fn an_apps_download_sees_only_what_it_holds_or_was_granted(fx) {
        let store = fx.open();
        let theirs = store.put(&pattern(17 * MIB), ArtifactType::Generic).unwrap();
        let mut app = store.app("app-1", Quota::UNLIMITED).unwrap();
        assert_eq!(app.download(&theirs).unwrap_err(), Error::NotFound(theirs));
        app.grant(theirs);
        assert_eq!(app.download(&theirs).unwrap().size(), 17 << 20);
        let mut up = app.upload(ArtifactType::Generic);
        up.write(&pattern(5 * MIB)).unwrap();
        let mine = up.finish().unwrap();
        assert_eq!(app.usage().unwrap().bytes, 5 << 20, "charged to the app");
        assert_eq!(app.stat(&mine).unwrap().reference_count, 1);
        assert_eq!(store.stat(&mine).unwrap().reference_count, 0, "not the host's");
    }
}
