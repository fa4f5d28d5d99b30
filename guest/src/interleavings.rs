//! Every interleaving of two operations' backend calls, explored
//! exhaustively up to a depth: each backend call is a scheduling point, and
//! a schedule says whose call runs next. Regression tests for the races
//! other stores shipped: a gc that lists while a reference is being taken
//! (iroh-blobs #247), and a put that finds content present while it is
//! being deleted (git's object freshening).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};

use crate::fake_backend::{Access, Data};
use crate::hash::{Hash, hash_hex};
use crate::ops::*;
use crate::record::{ArtifactType, Entry, EntryState, Names, Record, State, Usage};

#[derive(Default)]
struct Turns {
    schedule: Vec<usize>,
    pos: usize,
    done: [bool; 2],
}

/// The shared backend and the turnstile that orders the two threads' calls.
struct World {
    data: Mutex<Data>,
    turns: Mutex<Turns>,
    cv: Condvar,
}

/// One thread's backend: the fake, each of whose calls waits for its turn.
struct Scheduled {
    world: Arc<World>,
    me: usize,
}

impl Access for Scheduled {
    /// Waits for this thread's turn, runs `f` on the data, passes the turn on.
    fn turn<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        let mut turns = self.world.turns.lock().unwrap();
        loop {
            while turns.pos < turns.schedule.len() && turns.done[turns.schedule[turns.pos]] {
                turns.pos += 1;
            }
            let next = if turns.pos < turns.schedule.len() {
                turns.schedule[turns.pos]
            } else {
                // Past the schedule: the lower-numbered live thread runs.
                usize::from(turns.done[0])
            };
            if next == self.me {
                break;
            }
            turns = self.world.cv.wait(turns).unwrap();
        }
        let out = f(&mut self.world.data.lock().unwrap());
        turns.pos += 1;
        self.world.cv.notify_all();
        out
    }

    fn peek<T>(&self, f: impl FnOnce(&Data) -> T) -> T {
        f(&self.world.data.lock().unwrap())
    }
}

impl Scheduled {
    fn finish(&self) {
        self.world.turns.lock().unwrap().done[self.me] = true;
        self.world.cv.notify_all();
    }
}

type Op = fn(&Scheduled);

/// Runs `a` and `b` under every schedule of the first `depth` backend calls;
/// calls `check` on the data after each run. Returns the schedules run.
fn explore(initial: &Data, depth: u32, a: Op, b: Op, check: impl Fn(&Data, &[usize])) -> usize {
    for bits in 0u32..(1 << depth) {
        let schedule: Vec<usize> = (0..depth).map(|i| ((bits >> i) & 1) as usize).collect();
        let world = Arc::new(World {
            data: Mutex::new(initial.clone()),
            turns: Mutex::new(Turns {
                schedule: schedule.clone(),
                ..Turns::default()
            }),
            cv: Condvar::new(),
        });
        std::thread::scope(|s| {
            for (me, op) in [(0usize, a), (1usize, b)] {
                let backend = Scheduled {
                    world: world.clone(),
                    me,
                };
                s.spawn(move || {
                    op(&backend);
                    backend.finish();
                });
            }
        });
        check(&world.data.lock().unwrap(), &schedule);
    }
    1 << depth
}

const X: &[u8] = b"the content both operations touch";
const G: ArtifactType = ArtifactType::Generic;
const H: Caller = Caller::HOST;

/// Builds the starting state by running `setup` alone.
fn start(clock: u64, setup: impl Fn(&Scheduled)) -> Data {
    let world = Arc::new(World {
        data: Mutex::new(Data {
            clock,
            ..Data::default()
        }),
        turns: Mutex::new(Turns::default()),
        cv: Condvar::new(),
    });
    setup(&Scheduled {
        world: world.clone(),
        me: 0,
    });
    world.data.lock().unwrap().clone()
}

/// No live record without its blob, and the blob matches its address;
/// once both operations are done, nothing is left under way and the index
/// agrees with the records: see [`index_agrees`].
fn consistent(d: &Data) -> Result<(), String> {
    for (key, v) in &d.records {
        let rec = Record::decode(&v.data).map_err(|e| e.to_string())?;
        if rec.state == State::Live {
            match d.blobs.get(key) {
                Some(b) if hash_hex(b) == *key => {}
                Some(_) => return Err(format!("{key}: blob does not match")),
                None => return Err(format!("{key}: live record without its blob")),
            }
        }
    }
    index_agrees(d)
}

/// With no operation under way: no entry adding or removing, no marks; every
/// live record counts exactly its owners' live entries, every live entry is
/// counted in the live record of its origin, and every owner's usage is the
/// sum of its live entries.
fn index_agrees(d: &Data) -> Result<(), String> {
    let (usage, names) = (usage_key().to_string(), names_key().to_string());
    let mut owners_of: BTreeMap<String, u64> = BTreeMap::new();
    let mut usage_of: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    // References names hold, by (space, hash): as the entries count them,
    // and as the names records do. Nothing crashes here, so they agree.
    let mut named: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut naming: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((space, key), v) in &d.entries {
        if *key == usage {
            continue;
        }
        if *key == names {
            let record = Names::decode(&v.data)?;
            for (_, target) in record.listed("", None) {
                *naming.entry((space.clone(), hash_of(target))).or_default() += 1;
            }
            continue;
        }
        let e = Entry::decode(&v.data).map_err(|e| e.to_string())?;
        if e.named > 0 {
            named.insert((space.clone(), key.clone()), e.named);
        }
        if e.state != EntryState::Live {
            return Err(format!("{space}/{key}: entry left {:?}", e.state));
        }
        let rec = d
            .records
            .get(key)
            .and_then(|v| Record::decode(&v.data).ok())
            .ok_or_else(|| format!("{space}/{key}: live entry without a record"))?;
        if rec.state != State::Live || rec.origin != e.origin {
            return Err(format!(
                "{space}/{key}: entry counted in another incarnation"
            ));
        }
        *owners_of.entry(key.clone()).or_default() += 1;
        let u = usage_of.entry(space.clone()).or_default();
        *u = (u.0 + e.size, u.1 + 1);
    }
    for (key, v) in &d.records {
        let rec = Record::decode(&v.data).map_err(|e| e.to_string())?;
        if !rec.marks.is_empty() {
            return Err(format!("{key}: marks left: {:?}", rec.marks));
        }
        let held = owners_of.get(key).copied().unwrap_or(0);
        if rec.state == State::Live && rec.owners != held {
            return Err(format!(
                "{key}: counts {} owners, {held} hold it",
                rec.owners
            ));
        }
    }
    for ((space, key), v) in &d.entries {
        if *key != usage {
            continue;
        }
        let u = Usage::decode(&v.data).map_err(|e| e.to_string())?;
        let sum = usage_of.get(space).copied().unwrap_or((0, 0));
        // A leave's mark stays under private dedup until it is settled.
        if (u.bytes, u.artifacts) != sum || u.marks.iter().any(|m| m.join) {
            return Err(format!("{space}: usage {u:?}, entries add up to {sum:?}"));
        }
    }
    for (space, sum) in &usage_of {
        let host = *space == owner_key(HOST_OWNER).to_string();
        if !host && !d.entries.contains_key(&(space.clone(), usage.clone())) {
            return Err(format!("{space}: no usage record for {sum:?}"));
        }
    }
    if named != naming {
        return Err(format!(
            "entries hold {named:?} for names, the names point at {naming:?}"
        ));
    }
    Ok(())
}

/// The hex form of 32 raw bytes.
fn hash_of(raw: &[u8; 32]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// After a run: the data is [`consistent`], and each `(owner, count)` holds
/// `count` live references to `X`.
fn holds(d: &Data, schedule: &[usize], counts: &[(&str, u64)]) {
    consistent(d).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
    for (owner, count) in counts {
        assert_eq!(count_of(d, owner, &hash_hex(X)), *count, "{schedule:?}");
    }
}

/// The live references `owner` holds to `key`.
fn count_of(d: &Data, owner: &str, key: &str) -> u64 {
    d.entries
        .get(&(owner_key(owner).to_string(), key.to_string()))
        .and_then(|v| Entry::decode(&v.data).ok())
        .filter(|e| e.state == EntryState::Live)
        .map_or(0, |e| e.count)
}

/// `caller` puts `X`.
fn put_x(b: &Scheduled, caller: &Caller) {
    put(b, caller, X, G).unwrap();
}

/// `caller` releases a reference to `X`.
fn release_x(b: &Scheduled, caller: &Caller) {
    release(b, caller, &hash_hex(X)).unwrap();
}

/// `caller` releases its last reference to `X`.
fn release_last_x(b: &Scheduled, caller: &Caller) {
    assert_eq!(release(b, caller, &hash_hex(X)).unwrap(), 0);
}

/// A gc with a grace period of `grace_ms`.
fn run_gc(b: &Scheduled, grace_ms: u64) {
    gc(b, grace_ms).unwrap();
}

/// After a run that deleted `X`: no record and no blob are left.
fn gone(d: &Data, schedule: &[usize]) {
    assert!(d.records.is_empty() && d.blobs.is_empty(), "{schedule:?}");
}

#[test]
fn a_put_racing_the_release_that_deletes_its_content_never_loses_it() {
    // git's freshening bug: a put that finds the object present while a
    // delete of it is under way.
    let initial = start(1000, |b| put_x(b, &H));
    let runs = explore(
        &initial,
        12,
        |b| put_x(b, &H),
        |b| release_x(b, &H),
        |d, schedule| holds(d, schedule, &[(HOST_OWNER, 1)]),
    );
    assert_eq!(runs, 4096);
}

#[test]
fn a_put_racing_gc_never_loses_its_content() {
    // iroh-blobs #247: gc lists blobs while a put is taking a reference. The
    // content is already there as an old orphan (a crashed put left it), so
    // gc may delete it at any moment; the put must still end with its blob.
    let initial = start(0, |b| b.write_blob(&Hash::of(X), X).unwrap());
    let initial = Data {
        clock: 1_000_000,
        ..initial
    };
    explore(
        &initial,
        12,
        |b| put_x(b, &H),
        |b| run_gc(b, 60_000),
        |d, schedule| holds(d, schedule, &[(HOST_OWNER, 1)]),
    );
}

#[test]
fn two_puts_of_new_content_count_two() {
    let initial = start(1000, |_| {});
    let put_h: Op = |b| put_x(b, &H);
    explore(&initial, 12, put_h, put_h, |d, schedule| {
        holds(d, schedule, &[(HOST_OWNER, 2)])
    });
}

#[test]
fn two_releases_to_zero_delete_exactly_once() {
    let initial = start(1000, |b| (0..2).for_each(|_| put_x(b, &H)));
    let release_h: Op = |b| release_x(b, &H);
    explore(&initial, 12, release_h, release_h, gone);
}

fn app(owner: &str) -> Caller<'_> {
    Caller {
        owner,
        admin: false,
        quota: Quota::UNLIMITED,
        dedup: Dedup::Shared,
    }
}

#[test]
fn two_owners_first_puts_of_one_content_count_two_owners() {
    let initial = start(1000, |_| {});
    explore(
        &initial,
        14,
        |b| put_x(b, &app("a")),
        |b| put_x(b, &app("z")),
        |d, schedule| holds(d, schedule, &[("a", 1), ("z", 1)]),
    );
}

#[test]
fn an_owner_leaving_while_another_joins_never_loses_the_content() {
    let initial = start(1000, |b| put_x(b, &app("a")));
    explore(
        &initial,
        14,
        |b| release_last_x(b, &app("a")),
        |b| put_x(b, &app("z")),
        |d, schedule| holds(d, schedule, &[("a", 0), ("z", 1)]),
    );
}

#[test]
fn a_gc_rolling_back_a_first_put_under_way_leaves_it_whole_or_retried() {
    // Grace 0: gc takes the put's `Adding` entry for an abandoned one and
    // rolls it back at every point of the put; the put must notice, undo
    // what is its own and start over, and end holding its reference.
    let initial = start(1000, |b| put_x(b, &app("z")));
    explore(
        &initial,
        14,
        |b| put_x(b, &app("a")),
        |b| run_gc(b, 0),
        |d, schedule| holds(d, schedule, &[("a", 1), ("z", 1)]),
    );
}

#[test]
fn a_last_release_finished_twice_counts_out_once() {
    // gc finishes a `Removing` entry while its own release is still at it.
    let initial = start(1000, |b| ["a", "z"].iter().for_each(|o| put_x(b, &app(o))));
    explore(
        &initial,
        14,
        |b| release_last_x(b, &app("a")),
        |b| run_gc(b, 60_000),
        |d, schedule| holds(d, schedule, &[("a", 0), ("z", 1)]),
    );
}

#[test]
fn the_hosts_remove_racing_an_owners_release_deletes_once() {
    let initial = start(1000, |b| {
        ["a", "a", "z"].iter().for_each(|o| put_x(b, &app(o)))
    });
    explore(
        &initial,
        14,
        |b| drop(release(b, &app("a"), &hash_hex(X))),
        |b| remove(b, &H, &hash_hex(X)).unwrap(),
        |d, schedule| {
            holds(d, schedule, &[]);
            gone(d, schedule);
        },
    );
}

#[test]
fn under_private_dedup_a_last_leave_racing_a_join_never_loses_the_content() {
    fn private(owner: &str) -> Caller<'_> {
        Caller {
            dedup: Dedup::Private,
            ..app(owner)
        }
    }
    let initial = start(1000, |b| put_x(b, &private("a")));
    explore(
        &initial,
        13,
        |b| release_last_x(b, &private("a")),
        |b| put_x(b, &private("z")),
        |d, schedule| holds(d, schedule, &[("z", 1)]),
    );
}

const Y: &[u8] = b"the other content";

/// What `owner`'s name `n` points at.
fn name_of(d: &Data, owner: &str) -> Option<String> {
    let v = d
        .entries
        .get(&(owner_key(owner).to_string(), names_key().to_string()))?;
    Names::decode(&v.data).ok()?.get("n").map(|h| hash_of(&h))
}

#[test]
fn two_moves_of_one_name_leave_it_on_one_target_holding_once() {
    let initial = start(1000, |b| {
        put_x(b, &app("a"));
        put(b, &app("a"), Y, G).unwrap();
    });
    explore(
        &initial,
        14,
        |b| drop(tag_set(b, &app("a"), "n", &hash_hex(X)).unwrap()),
        |b| drop(tag_set(b, &app("a"), "n", &hash_hex(Y)).unwrap()),
        |d, schedule| {
            consistent(d).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
            let on = name_of(d, "a");
            assert!(
                on == Some(hash_hex(X)) || on == Some(hash_hex(Y)),
                "{schedule:?}"
            );
        },
    );
}

#[test]
fn a_name_set_racing_the_last_release_never_points_at_nothing() {
    let initial = start(1000, |b| put_x(b, &app("a")));
    explore(
        &initial,
        14,
        |b| match tag_set(b, &app("a"), "n", &hash_hex(X)) {
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => panic!("{e:?}"),
        },
        |b| release_last_x(b, &app("a")),
        |d, schedule| {
            consistent(d).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
            match name_of(d, "a") {
                Some(_) => assert_eq!(count_of(d, "a", &hash_hex(X)), 1, "{schedule:?}"),
                None => gone(d, schedule),
            }
        },
    );
}

#[test]
fn a_name_deleted_while_it_is_moved_ends_moved_or_gone_and_holds_right() {
    let initial = start(1000, |b| {
        put_x(b, &app("a"));
        put(b, &app("a"), Y, G).unwrap();
        tag_set(b, &app("a"), "n", &hash_hex(X)).unwrap();
    });
    explore(
        &initial,
        14,
        |b| drop(tag_delete(b, &app("a"), "n").unwrap()),
        |b| drop(tag_set(b, &app("a"), "n", &hash_hex(Y)).unwrap()),
        |d, schedule| {
            consistent(d).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
            let on = name_of(d, "a");
            assert!(
                on.is_none() || on == Some(hash_hex(Y)),
                "{schedule:?}: {on:?}"
            );
        },
    );
}

#[test]
fn the_hosts_remove_racing_a_name_set_leaves_no_name_behind() {
    let initial = start(1000, |b| put_x(b, &app("a")));
    explore(
        &initial,
        15,
        |b| match tag_set(b, &app("a"), "n", &hash_hex(X)) {
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => panic!("{e:?}"),
        },
        |b| remove(b, &H, &hash_hex(X)).unwrap(),
        |d, schedule| {
            consistent(d).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
            gone(d, schedule);
            assert_eq!(name_of(d, "a"), None, "{schedule:?}");
        },
    );
}
