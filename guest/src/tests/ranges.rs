//! Verified ranges: proven through the outboard, reading only the range's
//! groups and path; damage outside it does not matter, damage inside it
//! always fails; a missing or damaged outboard is rebuilt.

use super::*;
use crate::outboard::{GROUP_LEN, Shape};

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 251) as u8).collect()
}

/// A store holding `len` bytes put whole (so the core wrote the outboard).
fn stored(len: usize) -> (Fake, String, Vec<u8>) {
    let b = Fake::default();
    let data = content(len);
    let h = put(&b, &H, &data, G).unwrap();
    (b, h, data)
}

fn flip(map_value: &mut [u8], at: usize) {
    map_value[at] ^= 0x40;
}

#[test]
fn ranges_round_trip_at_every_edge_and_read_only_their_path() {
    let len = (5 << 20) + 1025;
    let (b, h, data) = stored(len);
    assert_eq!(b.data().outboard_writes, 1, "the put wrote the outboard");
    let len = len as u64;
    for (offset, n) in [
        (0, 1),
        (0, 4096),
        (4095, 2),
        (GROUP_LEN - 1, 2),
        (GROUP_LEN, GROUP_LEN),
        (1_000_000, 4096),
        (len - 4096, 4096),
        (len - 1, 1),
        (len - 1025, 1025),
        (0, RANGE_LIMIT),
    ] {
        let before = b.data().bytes_read;
        let got = get_range(&b, &H, &h, offset, n).unwrap();
        assert_eq!(
            got,
            &data[offset as usize..(offset + n) as usize],
            "{offset}+{n}"
        );
        let read = b.data().bytes_read - before;
        let groups = (offset + n).div_ceil(GROUP_LEN) - offset / GROUP_LEN;
        let levels = 64 - (len / GROUP_LEN).leading_zeros() as u64;
        assert!(
            read <= groups * GROUP_LEN + 2 * levels * 32,
            "{offset}+{n}: read {read} bytes"
        );
        let shared = b.data().shared_reads;
        assert_eq!(prove_range(&b, &h, len, offset, n).unwrap(), got);
        assert_eq!(
            b.data().shared_reads,
            shared,
            "the size given, no record read"
        );
    }
    assert_eq!(b.data().outboard_writes, 1, "nothing was rebuilt");
}

#[test]
fn empty_past_the_end_and_too_long_ranges() {
    let (b, h, _) = stored(300_000);
    assert_eq!(get_range(&b, &H, &h, 0, 0).unwrap(), Vec::<u8>::new());
    assert_eq!(get_range(&b, &H, &h, 300_000, 0).unwrap(), Vec::<u8>::new());
    assert_eq!(
        get_range(&b, &H, &h, 300_000, 1),
        Err(Error::OutOfRange {
            offset: 300_000,
            length: 1,
            size: 300_000
        })
    );
    assert!(matches!(
        get_range(&b, &H, &h, u64::MAX, u64::MAX),
        Err(Error::RangeTooLong(RANGE_LIMIT))
    ));
    assert!(matches!(
        get_range(&b, &H, &h, u64::MAX, 1),
        Err(Error::OutOfRange { .. })
    ));
    let missing = "ab".repeat(32);
    assert_eq!(
        get_range(&b, &H, &missing, 0, 1),
        Err(Error::NotFound(missing.clone()))
    );
    assert!(matches!(
        get_range(&b, &H, "nope", 0, 1),
        Err(Error::InvalidHash(_))
    ));
}

#[test]
fn small_artifacts_and_one_chunk_inputs_are_verified_whole() {
    for len in [1usize, 1024, 1025, 20_000, (256 << 10) - 1] {
        let (b, h, data) = stored(len);
        assert!(
            b.data().outboards.is_empty(),
            "{len}: no outboard below the threshold"
        );
        let got = get_range(&b, &H, &h, len as u64 - 1, 1).unwrap();
        assert_eq!(got, &data[len - 1..]);
        b.data_mut().blobs.get_mut(&h).unwrap()[0] ^= 1;
        assert!(matches!(
            get_range(&b, &H, &h, len as u64 - 1, 1),
            Err(Error::Integrity { .. })
        ));
    }
}

#[test]
fn damage_outside_the_range_does_not_fail_it_damage_inside_always_does() {
    let len = (2 << 20) + 333;
    let (b, h, data) = stored(len);
    let (offset, n) = (700_000u64, 4096u64);
    let shape = Shape::of(len as u64).unwrap();
    let (first, end) = shape.groups_of(offset, n);
    let path: Vec<u64> = shape
        .path(first, end)
        .into_iter()
        .map(|node| shape.position(node))
        .collect();
    // Every byte of content outside the range's groups, every outboard node
    // off its path: damaged, the range still reads, right, without a rebuild.
    {
        let mut d = b.data_mut();
        let blob = d.blobs.get_mut(&h).unwrap();
        for at in (0..len).step_by(997) {
            if (at as u64) < first * GROUP_LEN || (at as u64) >= end * GROUP_LEN {
                flip(blob, at);
            }
        }
        let ob = d.outboards.get_mut(&h).unwrap();
        for node in (0..ob.len()).step_by(32) {
            if !path.contains(&(node as u64)) {
                flip(ob, node + 7);
            }
        }
    }
    let writes = b.data().outboard_writes;
    let got = get_range(&b, &H, &h, offset, n).unwrap();
    assert_eq!(got, &data[offset as usize..(offset + n) as usize]);
    assert_eq!(b.data().outboard_writes, writes);
    // Any byte inside the range: integrity, never bytes.
    for at in [offset, offset + 1, offset + n / 2, offset + n - 1] {
        b.data_mut().blobs.get_mut(&h).unwrap()[at as usize] ^= 1;
        assert!(
            matches!(
                get_range(&b, &H, &h, offset, n),
                Err(Error::Integrity { .. })
            ),
            "byte {at}"
        );
        b.data_mut().blobs.get_mut(&h).unwrap()[at as usize] ^= 1;
    }
}

#[test]
fn a_damaged_missing_or_short_outboard_is_rebuilt_never_trusted() {
    let len = (1 << 20) + 5;
    let (b, h, data) = stored(len);
    let good = b.data().outboards[&h].clone();
    let shape = Shape::of(len as u64).unwrap();
    let (offset, n) = (400_000u64, 5000u64);
    let want = &data[offset as usize..(offset + n) as usize];
    let (first, end) = shape.groups_of(offset, n);
    for node in shape.path(first, end) {
        b.data_mut().outboards.get_mut(&h).unwrap()[shape.position(node) as usize] ^= 1;
        assert_eq!(get_range(&b, &H, &h, offset, n).unwrap(), want);
        assert_eq!(b.data().outboards[&h], good, "rebuilt");
    }
    b.data_mut().outboards.remove(&h);
    assert_eq!(get_range(&b, &H, &h, offset, n).unwrap(), want);
    assert_eq!(b.data().outboards[&h], good);
    b.data_mut().outboards.get_mut(&h).unwrap().truncate(100);
    assert_eq!(get_range(&b, &H, &h, offset, n).unwrap(), want);
    assert_eq!(b.data().outboards[&h], good);
    // A damaged path and damaged content: integrity, and no outboard is
    // written from damaged content.
    b.data_mut().outboards.remove(&h);
    b.data_mut().blobs.get_mut(&h).unwrap()[offset as usize] ^= 1;
    assert!(matches!(
        get_range(&b, &H, &h, offset, n),
        Err(Error::Integrity { .. })
    ));
    assert!(!b.data().outboards.contains_key(&h));
    // Content gone or cut short.
    b.data_mut().blobs.get_mut(&h).unwrap().truncate(len - 1);
    assert!(get_range(&b, &H, &h, offset, n).is_err());
    b.data_mut().blobs.remove(&h);
    assert_eq!(
        get_range(&b, &H, &h, offset, n),
        Err(Error::MissingContent(h.clone()))
    );
}

#[test]
fn owners_read_ranges_only_of_what_they_hold() {
    let b = Fake::default();
    let (a, z) = (app("a", NO_LIMIT), app("z", NO_LIMIT));
    let data = content(300_000);
    let h = put(&b, &a, &data, G).unwrap();
    assert_eq!(get_range(&b, &a, &h, 5, 10).unwrap(), &data[5..15]);
    let reads = b.data().shared_reads;
    assert_eq!(
        get_range(&b, &z, &h, 5, 10),
        Err(Error::NotFound(h.clone()))
    );
    assert_eq!(b.data().shared_reads, reads, "z read only its own index");
    // Past the end is told only to an owner that holds it.
    assert_eq!(
        get_range(&b, &z, &h, 1 << 40, 1),
        Err(Error::NotFound(h.clone()))
    );
}

#[test]
fn store_outboard_checks_the_groups_against_the_hash() {
    let b = Fake::default();
    let data = content(600_000);
    let h = hash_hex(&data);
    let groups = crate::outboard::group_values(&data, 0).unwrap();
    let mut wrong = groups.clone();
    wrong[3][0] ^= 1;
    let shared = Dedup::Shared;
    assert!(store_outboard(&b, shared, &key(&h), 600_000, &wrong).is_err());
    assert!(store_outboard(&b, shared, &key(&h), 600_000, &groups[1..]).is_err());
    assert!(store_outboard(&b, shared, &key(&h), 1000, &groups).is_err());
    assert!(b.data().outboards.is_empty());
    assert!(store_outboard(&b, shared, &key(&h), 600_000, &groups).unwrap());
    assert!(
        !store_outboard(&b, shared, &key(&h), 600_000, &groups).unwrap(),
        "already there"
    );
    // Private dedup writes it whether or not it is there.
    assert!(store_outboard(&b, Dedup::Private, &key(&h), 600_000, &groups).unwrap());
    assert_eq!(b.data().outboard_writes, 2);
}
