//! A conformance check for [`Backend`] implementations.
//!
//! The store's guarantees rest on the backend contract (see the
//! [module docs](super)); run [`check`] on a fresh, empty backend to test
//! one (the project runs it on every backend it ships). It returns the
//! first broken rule as text. A capability the backend refuses with
//! [`BackendError::Unsupported`] is skipped; one it claims (an `Ok`) and
//! does not keep fails.

use super::{Backend, Note, Side, SideKind, Space, Swap, SwapOutcome, VersionedRecord};
use crate::{BackendError, Hash};

fn key(n: u8) -> Hash {
    // Distinct, valid keys that sort in `n` order and spread over shards.
    let hex = format!("{n:02x}").repeat(32);
    Hash::from_hex(&hex).unwrap_or_else(|_| unreachable!("two hex digits repeated are a hash"))
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn call<T>(what: &str, r: super::BackendResult<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e}"))
}

/// Checks the [`Backend`] contract on an empty backend.
pub fn check(b: &dyn Backend) -> Result<(), String> {
    let (k1, k2, k3) = (key(0x01), key(0xab), key(0xfe));

    // Blobs.
    ensure!(
        call("read_blob", b.read_blob(&k1))?.is_none(),
        "empty backend has a blob"
    );
    for size in [0usize, 1, 1023, 1024, 1025] {
        let data = vec![size as u8; size];
        call("write_blob", b.write_blob(&k1, &data))?;
        ensure!(
            call("read_blob", b.read_blob(&k1))? == Some(data),
            "blob of {size} bytes did not round-trip"
        );
    }
    let ranged = |o: u64, l: u64| call("read_blob_range", b.read_blob_range(&k1, o, l));
    ensure!(
        ranged(0, 1025)? == Some(vec![1025usize as u8; 1025])
            && ranged(1000, 10)? == Some(vec![1025usize as u8; 10])
            && ranged(1020, 100)? == Some(vec![1025usize as u8; 5])
            && ranged(2000, 10)? == Some(Vec::new()),
        "read_blob_range does not return the range, clamped to the blob's end"
    );
    ensure!(
        call("read_blob_range", b.read_blob_range(&k2, 0, 10))?.is_none(),
        "read_blob_range of a missing blob is not none"
    );
    call("write_blob", b.write_blob(&k3, b"three"))?;
    let keys = |infos: Vec<super::BlobInfo>| infos.into_iter().map(|i| i.key).collect::<Vec<_>>();
    let listed = call("list_blobs", b.list_blobs(None, 10))?;
    ensure!(
        listed.iter().map(|i| i.size).collect::<Vec<_>>() == vec![1025, 5],
        "list_blobs sizes are {:?}",
        listed
    );
    ensure!(
        listed.iter().all(|i| i.modified > 1_600_000_000_000),
        "list_blobs modified times are not milliseconds since the epoch"
    );
    ensure!(
        call("blob_size", b.blob_size(&k1))? == Some(1025)
            && call("blob_size", b.blob_size(&k2))?.is_none(),
        "blob_size is wrong"
    );
    ensure!(
        keys(listed) == vec![k1, k3],
        "list_blobs is not the ascending list of blob keys"
    );
    ensure!(
        keys(call("list_blobs", b.list_blobs(Some(&k1), 10))?) == vec![k3],
        "list_blobs ignores `after`"
    );
    ensure!(
        call("list_blobs", b.list_blobs(None, 1))?.len() == 1,
        "list_blobs ignores `limit`"
    );

    // Records: create, conflict, update, versions.
    ensure!(
        call("read_record", b.read_record(Space::Shared, &k2))?.is_none(),
        "empty backend has a record"
    );
    let SwapOutcome::Written(v1) = call(
        "swap_record",
        b.swap_record(Space::Shared, &k2, Swap::new(None, Some(b"one"))),
    )?
    else {
        return Err("creating a record did not report Written".into());
    };
    ensure!(
        call("read_record", b.read_record(Space::Shared, &k2))?
            == Some(VersionedRecord {
                version: v1,
                data: b"one".to_vec()
            }),
        "record did not round-trip"
    );
    ensure!(
        call(
            "swap_record",
            b.swap_record(Space::Shared, &k2, Swap::new(None, Some(b"x")))
        )? == SwapOutcome::Conflict,
        "creating over an existing record did not conflict"
    );
    ensure!(
        call(
            "swap_record",
            b.swap_record(
                Space::Shared,
                &k2,
                Swap::new(Some(v1.wrapping_add(1)), Some(b"x"))
            )
        )? == SwapOutcome::Conflict,
        "a wrong version did not conflict"
    );
    let SwapOutcome::Written(v2) = call(
        "swap_record",
        b.swap_record(Space::Shared, &k2, Swap::new(Some(v1), Some(b"two"))),
    )?
    else {
        return Err("updating with the right version did not report Written".into());
    };
    ensure!(v2 != v1, "an update reused the version");
    ensure!(
        call("read_record", b.read_record(Space::Shared, &k2))?.map(|r| r.data)
            == Some(b"two".to_vec()),
        "update not visible"
    );

    // Guarded blob delete.
    call("write_blob", b.write_blob(&k2, b"blob two"))?;
    ensure!(
        !call("delete_blob", b.delete_blob(&k2, Some(v1)))?,
        "delete_blob with a stale version deleted"
    );
    ensure!(
        call("read_blob", b.read_blob(&k2))?.is_some(),
        "stale delete_blob removed the blob"
    );
    ensure!(
        call("delete_blob", b.delete_blob(&k2, Some(v2)))?,
        "delete_blob with the current version did nothing"
    );
    ensure!(
        call("read_blob", b.read_blob(&k2))?.is_none(),
        "deleted blob still readable"
    );
    ensure!(
        !call("delete_blob", b.delete_blob(&k3, Some(v2)))?,
        "delete_blob without a record deleted"
    );

    // The unversioned delete: only where there is no record.
    ensure!(
        call("delete_blob", b.delete_blob(&k1, None))?,
        "delete_blob(None) of a blob without a record did nothing"
    );
    ensure!(
        call("read_blob", b.read_blob(&k1))?.is_none(),
        "delete_blob(None) left the blob"
    );

    // Listing records.
    call(
        "swap_record",
        b.swap_record(Space::Shared, &k1, Swap::new(None, Some(b"r1"))),
    )?;
    let listed: Vec<Hash> = call("list_records", b.list_records(Space::Shared, None, 10))?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    ensure!(listed == vec![k1, k2], "list_records gave {listed:?}");
    let after: Vec<Hash> = call("list_records", b.list_records(Space::Shared, Some(&k1), 10))?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    ensure!(after == vec![k2], "list_records ignores `after`");

    // Deleting records.
    ensure!(
        call(
            "swap_record",
            b.swap_record(Space::Shared, &k2, Swap::new(Some(v1), None))
        )? == SwapOutcome::Conflict,
        "deleting with a stale version did not conflict"
    );
    ensure!(
        call(
            "swap_record",
            b.swap_record(Space::Shared, &k2, Swap::new(Some(v2), None))
        )? == SwapOutcome::Deleted,
        "deleting with the current version did not report Deleted"
    );
    ensure!(
        call("read_record", b.read_record(Space::Shared, &k2))?.is_none(),
        "deleted record still readable"
    );
    let SwapOutcome::Written(v3) = call(
        "swap_record",
        b.swap_record(Space::Shared, &k2, Swap::new(None, Some(b"again"))),
    )?
    else {
        return Err("re-creating a deleted record did not report Written".into());
    };
    ensure!(
        v3 != v2 && v3 != v1,
        "a re-created record reused an old version"
    );

    // Staged blobs: appended in pieces, stored (replacing) under a key, as
    // often as asked, and still there once the staging is discarded.
    let (k4, k5, k6) = (key(0x42), key(0x43), key(0x44));
    match b.stage() {
        Err(BackendError::Unsupported { .. }) => {}
        staging => {
            call("write_blob", b.write_blob(&k4, b"replaced"))?;
            let mut staging = call("stage", staging)?;
            let mut expected = Vec::new();
            for size in [1024usize, 1, 1025] {
                let piece = vec![size as u8; size];
                call("append", staging.append(&piece))?;
                expected.extend_from_slice(&piece);
            }
            call("finish", staging.finish())?;
            call("store", staging.store(&k4))?;
            call("store", staging.store(&k5))?;
            call("store", staging.store(&k4))?;
            call("discard", staging.discard())?;
            for k in [&k4, &k5] {
                ensure!(
                    call("read_blob", b.read_blob(k))?.as_ref() == Some(&expected),
                    "a staged blob did not round-trip (or did not survive its discarded staging)"
                );
            }
            let mut empty = call("stage", b.stage())?;
            call("store", empty.store(&k6))?;
            call("discard", empty.discard())?;
            ensure!(
                call("read_blob", b.read_blob(&k6))? == Some(Vec::new()),
                "an empty staged blob is not an empty blob"
            );
            let discarded = call("stage", b.stage())?;
            call("discard", discarded.discard())?;
            for k in [&k4, &k5, &k6] {
                call("delete_blob", b.delete_blob(k, None))?;
            }
        }
    }

    check_entries(b)?;
    for kind in SideKind::ALL {
        check_side(b, kind)?;
    }
    check_quarantine(b)?;
    ensure!(
        b.now() > 1_600_000_000_000,
        "now() is not milliseconds since the epoch"
    );
    Ok(())
}

/// Three keys of `kind`, ascending (notes: the one there is).
fn side_keys(kind: SideKind) -> Vec<Side> {
    match kind {
        SideKind::Note => vec![Side::Note(Note::LastGc)],
        _ => [0x21, 0x7c, 0xd3]
            .into_iter()
            .filter_map(|n| Side::of_kind(kind, key(n)))
            .collect(),
    }
}

/// Side objects of one kind: kept apart from blobs, records and the other
/// kinds, written whole, read whole and in ranges cut at their end, sized,
/// listed in order and deleted. A backend that keeps none of a kind must
/// refuse to write one ([`BackendError::Unsupported`]): one that says `Ok`
/// and drops it fails here.
fn check_side(b: &dyn Backend, kind: SideKind) -> Result<(), String> {
    let what = kind.name();
    let keys = side_keys(kind);
    let Some(&k1) = keys.first() else {
        return Ok(());
    };
    ensure!(
        call("read_side", b.read_side(&k1))?.is_none()
            && call("side_size", b.side_size(&k1))?.is_none()
            && call("list_side", b.list_side(kind, None, 10))?.is_empty(),
        "an empty backend has {what}"
    );
    let data: Vec<u8> = (0..4000u32).map(|i| (i % 253) as u8).collect();
    match b.write_side(&k1, &data) {
        Err(BackendError::Unsupported { .. }) => {
            ensure!(
                call("read_side", b.read_side(&k1))?.is_none()
                    && call("list_side", b.list_side(kind, None, 10))?.is_empty(),
                "a backend that refuses {what} kept one"
            );
            return Ok(());
        }
        written => call("write_side", written)?,
    }
    ensure!(
        call("read_side", b.read_side(&k1))?.as_ref() == Some(&data),
        "write_side of {what} said Ok but the object did not round-trip \
         (a backend that keeps no {what} must refuse with Unsupported)"
    );
    ensure!(
        call("side_size", b.side_size(&k1))? == Some(4000),
        "side_size of {what} is not the written length"
    );
    let ranges = [
        (0, 32),
        (3968, 32),
        (64, 0),
        (3990, 32),
        (5000, 32),
        (100, 7),
    ];
    let want: Vec<Vec<u8>> = ranges
        .iter()
        .map(|&(o, l)| super::range_of(&data, o, l).to_vec())
        .collect();
    ensure!(
        call("read_side_ranges", b.read_side_ranges(&k1, &ranges))? == Some(want),
        "read_side_ranges of {what} does not return the ranges in order, cut at the end"
    );
    // A quarantined blob moved aside again may be kept beside the first.
    if kind != SideKind::Quarantined {
        call("write_side", b.write_side(&k1, b"shorter"))?;
        ensure!(
            call("read_side", b.read_side(&k1))? == Some(b"shorter".to_vec()),
            "write_side does not replace {what}"
        );
    }
    for k in keys.iter().skip(1).rev() {
        call("write_side", b.write_side(k, &data))?;
    }
    let hashes: Vec<Hash> = keys.iter().filter_map(Side::hash_key).collect();
    ensure!(
        !call("list_blobs", b.list_blobs(None, 100))?
            .iter()
            .any(|i| hashes.contains(&i.key))
            && hashes
                .iter()
                .all(|k| b.read_record(Space::Shared, k).is_ok_and(|r| r.is_none())),
        "{what} show as blobs or records"
    );
    for other in SideKind::ALL.into_iter().filter(|o| *o != kind) {
        ensure!(
            call("list_side", b.list_side(other, None, 100))?.is_empty(),
            "{what} show as {}",
            other.name()
        );
    }
    let listed = call("list_side", b.list_side(kind, None, 10))?;
    ensure!(
        listed.iter().map(|i| i.key).collect::<Vec<_>>() == keys
            && listed.iter().skip(1).all(|i| i.size == 4000)
            && listed.iter().all(|i| i.modified > 1_600_000_000_000),
        "list_side is not the ascending list of {what} with sizes and times: {listed:?}"
    );
    if let Some(&k2) = keys.get(1) {
        ensure!(
            call("list_side", b.list_side(kind, Some(&k1), 1))?
                .iter()
                .map(|i| i.key)
                .collect::<Vec<_>>()
                == vec![k2],
            "list_side of {what} ignores `after` or `limit`"
        );
    }
    for k in &keys {
        ensure!(
            call("delete_side", b.delete_side(k))?,
            "delete_side of {what} said there was none"
        );
    }
    ensure!(
        !call("delete_side", b.delete_side(&k1))?
            && call("read_side", b.read_side(&k1))?.is_none()
            && call("read_side_ranges", b.read_side_ranges(&k1, &[(0, 1)]))?.is_none()
            && call("list_side", b.list_side(kind, None, 10))?.is_empty(),
        "deleted {what} are still there"
    );
    Ok(())
}

/// Quarantine moves a blob out of the way, into the side keyspace (unless
/// the backend refuses quarantined blobs, or keeps none: then it is gone).
fn check_quarantine(b: &dyn Backend) -> Result<(), String> {
    let k = key(0x66);
    ensure!(
        !call("quarantine_blob", b.quarantine_blob(&k))?,
        "quarantine_blob of a missing blob said it moved one"
    );
    call("write_blob", b.write_blob(&k, b"damaged"))?;
    match b.quarantine_blob(&k) {
        Err(BackendError::Unsupported { .. }) => return Ok(()),
        moved => ensure!(
            call("quarantine_blob", moved)?,
            "quarantine_blob said there was no blob"
        ),
    }
    ensure!(
        call("read_blob", b.read_blob(&k))?.is_none(),
        "a quarantined blob is still a blob"
    );
    let side = Side::Quarantined(k);
    ensure!(
        call("read_side", b.read_side(&side))? == Some(b"damaged".to_vec())
            && call("list_side", b.list_side(SideKind::Quarantined, None, 10))?
                .iter()
                .any(|i| i.key == side && i.size == 7),
        "a quarantined blob is not kept (and listed) as Side::Quarantined"
    );
    call("delete_side", b.delete_side(&side))?;
    Ok(())
}

/// Owner index spaces: versioned records like the shared ones, one space
/// per owner key, apart from each other and from the shared records.
fn check_entries(b: &dyn Backend) -> Result<(), String> {
    let (alice, bob) = (key(0x0a), key(0xb0));
    let (k1, k2, k3) = (key(0x01), key(0xab), key(0xfe));
    ensure!(
        call("read_record", b.read_record(Space::Owner(alice), &k1))?.is_none(),
        "empty space has an entry"
    );
    let SwapOutcome::Written(v1) = call(
        "swap_record",
        b.swap_record(Space::Owner(alice), &k1, Swap::new(None, Some(b"e1"))),
    )?
    else {
        return Err("creating an entry did not report Written".into());
    };
    ensure!(
        call(
            "swap_record",
            b.swap_record(Space::Owner(alice), &k1, Swap::new(None, Some(b"x")))
        )? == SwapOutcome::Conflict,
        "creating an existing entry did not conflict"
    );
    ensure!(
        call("read_record", b.read_record(Space::Owner(alice), &k1))?
            == Some(VersionedRecord {
                version: v1,
                data: b"e1".to_vec()
            }),
        "entry did not round-trip"
    );
    ensure!(
        call("read_record", b.read_record(Space::Owner(bob), &k1))?.is_none(),
        "an entry shows in another owner's space"
    );
    let shared = call("read_record", b.read_record(Space::Shared, &k1))?;
    ensure!(
        shared.is_none_or(|r| r.data != b"e1"),
        "an entry shows in the shared records"
    );
    let SwapOutcome::Written(v2) = call(
        "swap_record",
        b.swap_record(Space::Owner(alice), &k1, Swap::new(Some(v1), Some(b"e1'"))),
    )?
    else {
        return Err("updating an entry did not report Written".into());
    };
    ensure!(v2 != v1, "an entry update kept its version");
    for k in [&k3, &k2] {
        call(
            "swap_record",
            b.swap_record(Space::Owner(alice), k, Swap::new(None, Some(b"e"))),
        )?;
    }
    call(
        "swap_record",
        b.swap_record(Space::Owner(bob), &k2, Swap::new(None, Some(b"b"))),
    )?;
    let keys = |v: Vec<(Hash, VersionedRecord)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    ensure!(
        keys(call(
            "list_records",
            b.list_records(Space::Owner(alice), None, 10)
        )?) == vec![k1, k2, k3],
        "list_entries is not the space's entries in key order"
    );
    ensure!(
        keys(call(
            "list_records",
            b.list_records(Space::Owner(alice), Some(&k1), 1)
        )?) == vec![k2],
        "list_entries ignores `after` or `limit`"
    );
    ensure!(
        keys(call(
            "list_records",
            b.list_records(Space::Owner(bob), None, 10)
        )?) == vec![k2],
        "list_entries shows another owner's entries"
    );
    let owners = call("list_owners", b.list_owners(None, 10))?;
    ensure!(
        owners.contains(&alice) && owners.contains(&bob) && owners.is_sorted(),
        "list_owners gave {owners:?}"
    );
    ensure!(
        !call("list_owners", b.list_owners(Some(&alice), 10))?.contains(&alice),
        "list_owners ignores `after`"
    );
    ensure!(
        call(
            "swap_record",
            b.swap_record(Space::Owner(alice), &k1, Swap::new(Some(v1), None))
        )? == SwapOutcome::Conflict,
        "deleting an entry with a stale version did not conflict"
    );
    for (owner, k) in [(&alice, &k1), (&alice, &k2), (&alice, &k3), (&bob, &k2)] {
        let v = call("read_record", b.read_record(Space::Owner(*owner), k))?.map(|r| r.version);
        ensure!(
            call(
                "swap_record",
                b.swap_record(Space::Owner(*owner), k, Swap::new(v, None))
            )? == SwapOutcome::Deleted,
            "deleting an entry did not report Deleted"
        );
    }
    ensure!(
        call(
            "list_records",
            b.list_records(Space::Owner(alice), None, 10)
        )?
        .is_empty(),
        "deleted entries still listed"
    );
    let owners = call("list_owners", b.list_owners(None, 10))?;
    ensure!(
        !owners.contains(&alice) && !owners.contains(&bob),
        "spaces whose last entry was deleted are still listed: {owners:?}"
    );
    Ok(())
}
