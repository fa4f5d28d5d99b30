//! Encodings round-trip, are pinned, and refuse anything else.

use super::*;

fn mark(join: bool, k: u8) -> Mark {
    Mark {
        join,
        key: [k; 32],
        version: u64::from(k) << 40,
        size: 7,
    }
}

fn sample() -> Record {
    Record {
        state: State::Live,
        artifact_type: ArtifactType::ConfigBundle,
        size: 1025,
        stored_at: 1_700_000_000_000,
        owners: 3,
        origin: Origin {
            key: [9; 32],
            version: 77,
        },
        marks: vec![mark(true, 1), mark(false, 2)],
    }
}

fn entry() -> Entry {
    Entry {
        state: EntryState::Live,
        artifact_type: ArtifactType::WasmModule,
        size: 10,
        stored_at: 5,
        count: 2,
        incarnation: 99,
        origin: Origin {
            key: [3; 32],
            version: 4,
        },
        named: 0,
    }
}

#[test]
fn round_trips_every_kind_type_and_state() {
    for artifact_type in [
        ArtifactType::WasmModule,
        ArtifactType::AppManifest,
        ArtifactType::ConfigBundle,
        ArtifactType::Generic,
    ] {
        for state in [State::Live, State::Deleting] {
            let r = Record {
                state,
                artifact_type,
                ..sample()
            };
            assert_eq!(Record::decode(&r.encode()), Ok(r));
        }
        for state in [EntryState::Adding, EntryState::Live, EntryState::Removing] {
            let e = Entry {
                state,
                artifact_type,
                ..entry()
            };
            assert_eq!(Entry::decode(&e.encode()), Ok(e));
        }
    }
    let u = Usage {
        bytes: 4096,
        artifacts: 3,
        marks: vec![mark(true, 5)],
    };
    assert_eq!(Usage::decode(&u.encode()), Ok(u));
}

#[test]
fn layout_is_pinned() {
    let bytes = sample().encode();
    assert_eq!(&bytes[..8], b"ARTR\x02\x00\x02\x00");
    assert_eq!(&bytes[8..16], &1025u64.to_le_bytes());
    assert_eq!(&bytes[24..32], &3u64.to_le_bytes());
    assert_eq!(&bytes[32..64], &[9; 32]);
    assert_eq!(&bytes[64..72], &77u64.to_le_bytes());
    assert_eq!(&bytes[72..76], &2u32.to_le_bytes());
    assert_eq!(bytes[76], 1);
    assert_eq!(bytes.len(), 76 + 2 * 49);
    let e = entry().encode();
    assert_eq!(&e[..8], b"ARTE\x02\x01\x00\x00");
    assert_eq!(e.len(), 8 + 32 + 40);
}

#[test]
fn marks_are_a_set_of_transitions() {
    let mut r = sample();
    assert!(r.marks.has_mark(true, &[1; 32], 1 << 40));
    assert!(!r.marks.has_mark(false, &[1; 32], 1 << 40), "kind matters");
    assert!(!r.marks.has_mark(true, &[1; 32], 1), "version matters");
    assert_eq!(
        r.marks.take_mark(true, &[1; 32], 1 << 40),
        Some(mark(true, 1))
    );
    assert_eq!(r.marks.take_mark(true, &[1; 32], 1 << 40), None);
    assert_eq!(r.marks, vec![mark(false, 2)]);
}

#[test]
fn rejects_truncated_garbage_and_other_versions() {
    let good = sample().encode();
    for cut in 0..good.len() {
        assert!(Record::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    assert!(Record::decode(&[good.as_slice(), &[0]].concat()).is_err());
    assert!(Record::decode(&[0xff; 64]).is_err());
    for (at, value) in [(0, b'X'), (4, 1), (4, 3), (5, 7), (6, 9), (7, 1), (76, 0)] {
        let mut bad = good.clone();
        bad[at] = value;
        assert!(Record::decode(&bad).is_err(), "byte {at} = {value}");
    }
    let mut no_owners = sample();
    no_owners.owners = 0;
    assert!(Record::decode(&no_owners.encode()).is_err());
    let mut huge = good.clone();
    huge[72..76].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Record::decode(&huge).is_err());
    let e = entry().encode();
    for cut in 0..e.len() {
        assert!(Entry::decode(&e[..cut]).is_err(), "cut at {cut}");
    }
    assert!(Entry::decode(&good).is_err() && Record::decode(&e).is_err());
    let mut zero = entry();
    zero.count = 0;
    assert!(
        Entry::decode(&zero.encode()).is_err(),
        "a live entry holds something"
    );
}

#[test]
fn format_1_records_are_read_only_for_migration() {
    let v1 = RecordV1 {
        state: State::Live,
        artifact_type: ArtifactType::Generic,
        size: 3,
        stored_at: 42,
        owners: vec![("@host".into(), 2), ("app-1".into(), 1)],
    };
    let bytes = v1.encode();
    assert_eq!(&bytes[..8], b"ARTR\x01\x00\x03\x00");
    assert!(RecordV1::is_v1(&bytes) && !RecordV1::is_v1(&sample().encode()));
    assert_eq!(RecordV1::decode(&bytes), Ok(v1));
    let err = Record::decode(&bytes).unwrap_err();
    assert!(err.contains("artifacts migrate"), "{err}");
}

#[test]
fn usage_is_told_apart() {
    let u = Usage::default();
    assert!(Usage::is_usage(&u.encode()) && !Usage::is_usage(&sample().encode()));
    assert!(Record::is_artifact(&sample().encode()) && !Record::is_artifact(&u.encode()));
    assert!(Usage::decode(&sample().encode()).is_err());
    assert!(Usage::decode(&u.encode()[..20]).is_err());
}

#[test]
fn owner_ids_are_checked() {
    for ok in [
        "@host",
        "app-1",
        "a",
        "x.y:z_9",
        "a/b",
        "app-1/plugin/x",
        &"a".repeat(64),
    ] {
        assert!(validate_owner(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "a b",
        "é",
        "a\\b",
        &"a".repeat(65),
        &format!("{}/b", "a".repeat(63)),
    ] {
        assert!(validate_owner(bad).is_err(), "{bad}");
    }
}

#[test]
fn an_entry_is_format_2_until_names_hold_it_then_format_3() {
    let plain = entry().encode();
    assert_eq!(plain[4], 2, "byte for byte what a core before names wrote");
    assert_eq!(plain.len(), 80);
    let named = Entry {
        named: 2,
        ..entry()
    };
    let bytes = named.encode();
    assert_eq!((bytes[4], bytes.len()), (3, 88));
    assert_eq!(&bytes[80..], &2u64.to_le_bytes());
    assert_eq!(Entry::decode(&bytes), Ok(named.clone()));
    // More names' references than references, none, or a format-2 entry
    // with a tail: refused.
    let over = Entry {
        named: 3,
        ..entry()
    };
    assert!(Entry::decode(&over.encode()).is_err());
    let mut zero = bytes.clone();
    zero[80..].copy_from_slice(&0u64.to_le_bytes());
    assert!(Entry::decode(&zero).is_err());
    let mut tail = plain.clone();
    tail.extend_from_slice(&1u64.to_le_bytes());
    assert!(Entry::decode(&tail).is_err());
    assert!(Entry::decode(&bytes[..80]).is_err(), "format 3 cut short");
}

#[test]
fn names_records_round_trip_sorted_and_refuse_anything_malformed() {
    let mut names = Names::default();
    assert_eq!(names.set("b", [2; 32]), None);
    assert_eq!(names.set("a", [1; 32]), None);
    assert_eq!(names.set("é", [3; 32]), None);
    assert_eq!(names.set("a", [4; 32]), Some([1; 32]));
    let bytes = names.encode();
    assert_eq!(&bytes[..8], b"ARTN\x03\0\0\0");
    let back = Names::decode(&bytes).unwrap();
    assert_eq!(back, names);
    let listed: Vec<&str> = back.listed("", None).map(|(n, _)| n).collect();
    assert_eq!(listed, ["a", "b", "é"]);
    assert_eq!(back.listed("", Some("a")).count(), 2);
    assert_eq!(back.listed("b", None).count(), 1);
    assert_eq!(back.listed("a", Some("zz")).count(), 0);
    for cut in 0..bytes.len() {
        assert!(Names::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    // Out of order, a control character, not UTF-8.
    let mut swapped = bytes.clone();
    swapped[13] = b'c';
    assert!(Names::decode(&swapped).is_err());
    let mut control = bytes.clone();
    control[13] = 0x07;
    assert!(Names::decode(&control).is_err());
    let mut not_utf8 = bytes.clone();
    not_utf8[13] = 0xff;
    assert!(Names::decode(&not_utf8).is_err());
    assert!(check_name("").is_err() && check_name(&"x".repeat(256)).is_err());
    assert!(check_name(&"x".repeat(255)).is_ok() && check_name("plugin@latest").is_ok());
}
