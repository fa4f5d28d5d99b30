//! A conformance check for [`Backend`] implementations.
//!
//! The store's guarantees rest on the backend contract; run [`check`] on a
//! fresh, empty backend to test one (the project runs it on every backend it
//! ships). It returns the first broken rule as text.

use super::{Backend, Space, Swap, SwapOutcome, VersionedRecord};
use crate::{Hash, Sha256Digest};

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
    call("write_blob", b.write_blob(&k4, b"replaced"))?;
    let mut staging = call("stage", b.stage())?;
    let mut expected = Vec::new();
    for size in [1024usize, 1, 1025] {
        let piece = vec![size as u8; size];
        call("append_staged", b.append_staged(&mut staging, &piece))?;
        expected.extend_from_slice(&piece);
    }
    call("finish_staged", b.finish_staged(&mut staging))?;
    call("write_staged", b.write_staged(&mut staging, &k4))?;
    call("write_staged", b.write_staged(&mut staging, &k5))?;
    call("write_staged", b.write_staged(&mut staging, &k4))?;
    call("discard_staged", b.discard_staged(staging))?;
    for k in [&k4, &k5] {
        ensure!(
            call("read_blob", b.read_blob(k))?.as_ref() == Some(&expected),
            "a staged blob did not round-trip (or did not survive its discarded staging)"
        );
    }
    let mut empty = call("stage", b.stage())?;
    call("write_staged", b.write_staged(&mut empty, &k6))?;
    call("discard_staged", b.discard_staged(empty))?;
    ensure!(
        call("read_blob", b.read_blob(&k6))? == Some(Vec::new()),
        "an empty staged blob is not an empty blob"
    );
    let discarded = call("stage", b.stage())?;
    call("discard_staged", b.discard_staged(discarded))?;
    for k in [&k4, &k5, &k6] {
        call("delete_blob", b.delete_blob(k, None))?;
    }

    check_entries(b)?;
    check_outboards(b)?;
    check_aliases(b)?;
    ensure!(
        b.now() > 1_600_000_000_000,
        "now() is not milliseconds since the epoch"
    );
    Ok(())
}

/// Outboards: kept apart from blobs, written whole, read in ranges cut at
/// their end, listed and deleted for gc. A backend may keep none (the
/// default methods): then it must never return one.
fn check_outboards(b: &dyn Backend) -> Result<(), String> {
    let (k1, k2, k3) = (key(0x21), key(0x7c), key(0xd3));
    ensure!(
        call("read_outboard", b.read_outboard(&k1, &[(0, 32)]))?.is_none()
            && call("outboard_size", b.outboard_size(&k1))?.is_none(),
        "an empty backend has an outboard"
    );
    let data: Vec<u8> = (0..4000u32).map(|i| (i % 253) as u8).collect();
    call("write_outboard", b.write_outboard(&k1, &data))?;
    if call("outboard_size", b.outboard_size(&k1))?.is_none() {
        ensure!(
            call("read_outboard", b.read_outboard(&k1, &[(0, 32)]))?.is_none(),
            "a backend that keeps no outboards returned one"
        );
        return Ok(());
    }
    ensure!(
        call("outboard_size", b.outboard_size(&k1))? == Some(4000),
        "outboard_size is not the written length"
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
        call("read_outboard", b.read_outboard(&k1, &ranges))? == Some(want),
        "read_outboard does not return the ranges in order, cut at the end"
    );
    call("write_outboard", b.write_outboard(&k1, b"shorter"))?;
    ensure!(
        call("read_outboard", b.read_outboard(&k1, &[(0, 100)]))?
            == Some(vec![b"shorter".to_vec()]),
        "write_outboard does not replace an outboard"
    );
    call("write_outboard", b.write_outboard(&k3, &data))?;
    call("write_outboard", b.write_outboard(&k2, &data))?;
    ensure!(
        call("blob_size", b.blob_size(&k2))?.is_none()
            && !call("list_blobs", b.list_blobs(None, 100))?
                .iter()
                .any(|i| [k1, k2, k3].contains(&i.key)),
        "outboards show as blobs"
    );
    let listed = call("list_outboards", b.list_outboards(None, 10))?;
    ensure!(
        listed.iter().map(|i| (i.key, i.size)).collect::<Vec<_>>()
            == vec![(k1, 7), (k2, 4000), (k3, 4000)]
            && listed.iter().all(|i| i.modified > 1_600_000_000_000),
        "list_outboards is not the ascending list of outboards with sizes and times: {listed:?}"
    );
    ensure!(
        call("list_outboards", b.list_outboards(Some(&k1), 1))?
            .iter()
            .map(|i| i.key)
            .collect::<Vec<_>>()
            == vec![k2],
        "list_outboards ignores `after` or `limit`"
    );
    for k in [k1, k2, k3] {
        ensure!(
            call("delete_outboard", b.delete_outboard(&k))?,
            "delete_outboard of an outboard said there was none"
        );
    }
    ensure!(
        !call("delete_outboard", b.delete_outboard(&k1))?
            && call("read_outboard", b.read_outboard(&k1, &[(0, 1)]))?.is_none()
            && call("list_outboards", b.list_outboards(None, 10))?.is_empty(),
        "a deleted outboard is still there"
    );
    Ok(())
}

/// sha256 aliases: a digest names one hash, replaced by a later write,
/// apart from blobs, records and outboards, listed in order and deleted for
/// gc. A backend may keep none (the default methods): then it must never
/// return one.
fn check_aliases(b: &dyn Backend) -> Result<(), String> {
    let digest = |n: u8| Sha256Digest::from_bytes(*key(n).as_bytes());
    let (d1, d2, d3) = (digest(0x05), digest(0x5a), digest(0xe7));
    let (t1, t2) = (key(0x33), key(0x44));
    ensure!(
        call("read_alias", b.read_alias(&d1))?.is_none()
            && call("list_aliases", b.list_aliases(None, 10))?.is_empty(),
        "an empty backend has an alias"
    );
    call("write_alias", b.write_alias(&d1, &t1))?;
    if call("read_alias", b.read_alias(&d1))?.is_none() {
        ensure!(
            call("list_aliases", b.list_aliases(None, 10))?.is_empty(),
            "a backend that keeps no aliases listed one"
        );
        return Ok(());
    }
    ensure!(
        call("read_alias", b.read_alias(&d1))? == Some(t1),
        "read_alias does not return the hash written"
    );
    call("write_alias", b.write_alias(&d1, &t2))?;
    ensure!(
        call("read_alias", b.read_alias(&d1))? == Some(t2),
        "write_alias does not replace an alias"
    );
    call("write_alias", b.write_alias(&d3, &t1))?;
    call("write_alias", b.write_alias(&d2, &t1))?;
    let keys = [d1, d2, d3].map(|d| Hash::from_bytes(*d.as_bytes()));
    ensure!(
        call("list_blobs", b.list_blobs(None, 100))?
            .iter()
            .all(|i| !keys.contains(&i.key))
            && call("list_outboards", b.list_outboards(None, 100))?
                .iter()
                .all(|i| !keys.contains(&i.key))
            && keys
                .iter()
                .all(|k| { b.read_record(Space::Shared, k).is_ok_and(|r| r.is_none()) }),
        "aliases show as blobs, outboards or records"
    );
    ensure!(
        call("list_aliases", b.list_aliases(None, 10))? == vec![d1, d2, d3],
        "list_aliases is not the ascending list of aliases"
    );
    ensure!(
        call("list_aliases", b.list_aliases(Some(&d1), 1))? == vec![d2],
        "list_aliases ignores `after` or `limit`"
    );
    for d in [d1, d2, d3] {
        ensure!(
            call("delete_alias", b.delete_alias(&d))?,
            "delete_alias of an alias said there was none"
        );
    }
    ensure!(
        !call("delete_alias", b.delete_alias(&d1))?
            && call("read_alias", b.read_alias(&d1))?.is_none()
            && call("list_aliases", b.list_aliases(None, 10))?.is_empty(),
        "a deleted alias is still there"
    );
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
