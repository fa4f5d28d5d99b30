//! Every interleaving of two operations' backend calls, explored
//! exhaustively up to a depth: each backend call is a scheduling point, and
//! a schedule says whose call runs next. Regression tests for the races
//! other stores shipped: a gc that lists while a reference is being taken
//! (iroh-blobs #247), and a put that finds content present while it is
//! being deleted (git's object freshening).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};

use crate::hash::hash_hex;
use crate::ops::*;
use crate::record::ArtifactType;

#[derive(Default, Clone)]
struct Data {
    blobs: BTreeMap<String, (Vec<u8>, u64)>,
    records: BTreeMap<String, Versioned>,
    next_version: u64,
    clock: u64,
}

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

struct Scheduled {
    world: Arc<World>,
    me: usize,
}

impl Scheduled {
    /// Waits for this thread's turn, runs `f` on the data, passes the turn on.
    fn call<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
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

    fn finish(&self) {
        self.world.turns.lock().unwrap().done[self.me] = true;
        self.world.cv.notify_all();
    }
}

impl Backend for Scheduled {
    fn write_blob(&self, key: &str, data: &[u8]) -> Result<(), String> {
        self.call(|d| {
            let now = d.clock;
            d.blobs.insert(key.into(), (data.to_vec(), now));
        });
        Ok(())
    }
    fn read_blob(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.call(|d| d.blobs.get(key).map(|(b, _)| b.clone())))
    }
    fn blob_size(&self, key: &str) -> Result<Option<u64>, String> {
        Ok(self.call(|d| d.blobs.get(key).map(|(b, _)| b.len() as u64)))
    }
    fn delete_blob(&self, key: &str, record_version: Option<u64>) -> Result<bool, String> {
        Ok(self.call(|d| {
            d.records.get(key).map(|v| v.version) == record_version && d.blobs.remove(key).is_some()
        }))
    }
    fn list_blobs(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, u64, u64)>, String> {
        Ok(self.call(|d| {
            d.blobs
                .iter()
                .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
                .take(limit as usize)
                .map(|(k, (b, m))| (k.clone(), b.len() as u64, *m))
                .collect()
        }))
    }
    fn read_record(&self, key: &str) -> Result<Option<Versioned>, String> {
        Ok(self.call(|d| d.records.get(key).cloned()))
    }
    fn swap_record(
        &self,
        key: &str,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<Swap, String> {
        Ok(self.call(|d| {
            if d.records.get(key).map(|v| v.version) != expected {
                return Swap::Conflict;
            }
            match new {
                None => {
                    d.records.remove(key);
                    Swap::Deleted
                }
                Some(data) => {
                    d.next_version += 1;
                    let version = d.next_version;
                    d.records.insert(
                        key.into(),
                        Versioned {
                            version,
                            data: data.to_vec(),
                        },
                    );
                    Swap::Written(version)
                }
            }
        }))
    }
    fn list_records(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Versioned)>, String> {
        Ok(self.call(|d| {
            d.records
                .iter()
                .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }))
    }
    fn now(&self) -> u64 {
        // Not a scheduling point: reading the clock changes nothing.
        self.world.data.lock().unwrap().clock
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

/// No live record without its blob, and the blob matches its address.
fn consistent(d: &Data) -> Result<(), String> {
    for (key, v) in &d.records {
        let rec = crate::record::Record::decode(&v.data).map_err(|e| e.to_string())?;
        if rec.state == crate::record::State::Live {
            match d.blobs.get(key) {
                Some((b, _)) if hash_hex(b) == *key => {}
                Some(_) => return Err(format!("{key}: blob does not match")),
                None => return Err(format!("{key}: live record without its blob")),
            }
        }
    }
    Ok(())
}

fn count_of(d: &Data, key: &str) -> u64 {
    d.records
        .get(key)
        .and_then(|v| crate::record::Record::decode(&v.data).ok())
        .filter(|r| r.state == crate::record::State::Live)
        .map_or(0, |r| r.reference_count())
}

#[test]
fn a_put_racing_the_release_that_deletes_its_content_never_loses_it() {
    // git's freshening bug: a put that finds the object present while a
    // delete of it is under way.
    let initial = start(1000, |b| drop(put(b, &H, X, G).unwrap()));
    let runs = explore(
        &initial,
        12,
        |b| drop(put(b, &H, X, G).unwrap()),
        |b| {
            release(b, &H, &hash_hex(X)).unwrap();
        },
        |d, schedule| {
            consistent(d).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
            assert_eq!(count_of(d, &hash_hex(X)), 1, "{schedule:?}");
        },
    );
    assert_eq!(runs, 4096);
}

#[test]
fn a_put_racing_gc_never_loses_its_content() {
    // iroh-blobs #247: gc lists blobs while a put is taking a reference. The
    // content is already there as an old orphan (a crashed put left it), so
    // gc may delete it at any moment; the put must still end with its blob.
    let initial = start(0, |b| b.write_blob(&hash_hex(X), X).unwrap());
    let initial = Data {
        clock: 1_000_000,
        ..initial
    };
    explore(
        &initial,
        12,
        |b| drop(put(b, &H, X, G).unwrap()),
        |b| {
            gc(b, 60_000).unwrap();
        },
        |d, schedule| {
            consistent(d).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
            assert_eq!(count_of(d, &hash_hex(X)), 1, "{schedule:?}");
        },
    );
}

#[test]
fn two_puts_of_new_content_count_two() {
    let initial = start(1000, |_| {});
    explore(
        &initial,
        12,
        |b| drop(put(b, &H, X, G).unwrap()),
        |b| drop(put(b, &H, X, G).unwrap()),
        |d, schedule| {
            consistent(d).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
            assert_eq!(count_of(d, &hash_hex(X)), 2, "{schedule:?}");
        },
    );
}

#[test]
fn two_releases_to_zero_delete_exactly_once() {
    let initial = start(1000, |b| {
        put(b, &H, X, G).unwrap();
        put(b, &H, X, G).unwrap();
    });
    explore(
        &initial,
        12,
        |b| {
            release(b, &H, &hash_hex(X)).unwrap();
        },
        |b| {
            release(b, &H, &hash_hex(X)).unwrap();
        },
        |d, schedule| {
            assert!(d.records.is_empty() && d.blobs.is_empty(), "{schedule:?}");
        },
    );
}
