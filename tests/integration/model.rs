//! Random sequences of operations, valid and malformed, through the host
//! and the wasm core, checked step by step against a simple model.

use std::collections::BTreeMap;

use artifacts::{ArtifactStore, ArtifactType, Error, Quota};
use proptest::prelude::*;

use crate::fixture::pattern;

/// Who acts: the host, or one of two apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Host,
    App(u8),
}

#[derive(Debug, Clone)]
enum Op {
    Put(Who, u8),
    Get(Who, u8),
    Release(Who, u8),
    Remove(Who, u8),
    Stat(Who, u8),
    Malformed(Who, String),
    Gc,
}

/// How many random cases to run: `default`, or `ARTIFACTS_MODEL_CASES` for a long run.
fn cases(default: u32) -> u32 {
    std::env::var("ARTIFACTS_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Content number `n`: sizes around BLAKE3's chunk size.
fn content(n: u8) -> Vec<u8> {
    let mut c = pattern([0, 1, 1023, 1024, 1025, 2048][usize::from(n % 6)]);
    c.push(n);
    c
}

fn hash(n: u8) -> artifacts::Hash {
    artifacts::Hash::of(&content(n))
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![Just(Who::Host), (0u8..2).prop_map(Who::App)]
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0u8..8;
    prop_oneof![
        4 => (who(), n.clone()).prop_map(|(w, n)| Op::Put(w, n)),
        2 => (who(), n.clone()).prop_map(|(w, n)| Op::Get(w, n)),
        2 => (who(), n.clone()).prop_map(|(w, n)| Op::Release(w, n)),
        1 => (who(), n.clone()).prop_map(|(w, n)| Op::Remove(w, n)),
        1 => (who(), n).prop_map(|(w, n)| Op::Stat(w, n)),
        1 => (who(), "[ -~]{0,70}").prop_map(|(w, s)| Op::Malformed(w, s)),
        1 => Just(Op::Gc),
    ]
}

/// The model: per content number, who holds how many references.
#[derive(Default, Debug)]
struct Model(BTreeMap<u8, BTreeMap<Who, u64>>);

impl Model {
    fn sees(&self, who: Who, n: u8) -> bool {
        self.0
            .get(&n)
            .is_some_and(|o| who == Who::Host || o.get(&who).is_some_and(|c| *c > 0))
    }
}

fn run(store: &ArtifactStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let apps = [
        store.app("app-0", Quota::UNLIMITED).unwrap(),
        store.app("app-1", Quota::UNLIMITED).unwrap(),
    ];
    let mut model = Model::default();
    for op in ops {
        match op.clone() {
            Op::Put(who, n) => {
                let h = match who {
                    Who::Host => store.put(&content(n), ArtifactType::Generic),
                    Who::App(a) => apps[usize::from(a)].put(&content(n), ArtifactType::Generic),
                }
                .unwrap();
                prop_assert_eq!(h, hash(n));
                *model.0.entry(n).or_default().entry(who).or_default() += 1;
            }
            Op::Get(who, n) => {
                let got = match who {
                    Who::Host => store.get(&hash(n)),
                    Who::App(a) => apps[usize::from(a)].get(&hash(n)),
                };
                if model.sees(who, n) {
                    prop_assert_eq!(got.unwrap(), content(n));
                } else {
                    prop_assert_eq!(got, Err(Error::NotFound(hash(n))));
                }
            }
            Op::Stat(who, n) => {
                let got = match who {
                    Who::Host => store.stat(&hash(n)),
                    Who::App(a) => apps[usize::from(a)].stat(&hash(n)),
                };
                if model.sees(who, n) {
                    let owners = &model.0[&n];
                    // Everyone's own references; the host sees every
                    // artifact but counts only its own.
                    let expected = owners.get(&who).copied().unwrap_or(0);
                    let meta = got.unwrap();
                    prop_assert_eq!(meta.reference_count, expected);
                    prop_assert_eq!(meta.size, content(n).len() as u64);
                } else {
                    prop_assert_eq!(got, Err(Error::NotFound(hash(n))));
                }
            }
            Op::Release(who, n) => {
                let got = match who {
                    Who::Host => store.release(&hash(n)),
                    Who::App(a) => apps[usize::from(a)].release(&hash(n)),
                };
                let mine = model
                    .0
                    .get(&n)
                    .and_then(|o| o.get(&who))
                    .copied()
                    .unwrap_or(0);
                if mine == 0 {
                    prop_assert_eq!(got, Err(Error::NotFound(hash(n))));
                } else {
                    prop_assert_eq!(got, Ok(mine - 1));
                    let owners = model.0.get_mut(&n).unwrap();
                    if mine == 1 {
                        owners.remove(&who);
                    } else {
                        owners.insert(who, mine - 1);
                    }
                    if owners.is_empty() {
                        model.0.remove(&n);
                    }
                }
            }
            Op::Remove(who, n) => {
                let got = match who {
                    Who::Host => store.remove(&hash(n)),
                    Who::App(a) => apps[usize::from(a)].remove(&hash(n)),
                };
                if !model.sees(who, n) {
                    prop_assert_eq!(got, Err(Error::NotFound(hash(n))));
                } else {
                    got.unwrap();
                    if who == Who::Host {
                        model.0.remove(&n);
                    } else {
                        let owners = model.0.get_mut(&n).unwrap();
                        owners.remove(&who);
                        if owners.is_empty() {
                            model.0.remove(&n);
                        }
                    }
                }
            }
            Op::Malformed(who, text) => {
                let valid = text.len() == 64
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                // Text is parsed at the edge: what does not parse never reaches a call.
                let got = match text.parse::<artifacts::Hash>() {
                    Err(e) => Err(Error::InvalidHash(e.to_string())),
                    Ok(h) => match who {
                        Who::Host => store.get(&h),
                        Who::App(a) => apps[usize::from(a)].get(&h),
                    },
                };
                if valid {
                    prop_assert!(matches!(got, Err(Error::NotFound(_))), "{got:?}");
                } else {
                    prop_assert!(matches!(got, Err(Error::InvalidHash(_))), "{got:?}");
                }
            }
            Op::Gc => {
                let r = store.gc(std::time::Duration::ZERO).unwrap();
                prop_assert_eq!(r.deletions_finished, 0);
            }
        }
        // After every step, the store holds exactly what the model holds,
        // and each app's index and usage exactly what it holds.
        prop_assert_eq!(store.count().unwrap(), model.0.len() as u64);
        for (i, app) in apps.iter().enumerate() {
            let mine: Vec<u8> = model
                .0
                .iter()
                .filter(|(_, o)| o.contains_key(&Who::App(i as u8)))
                .map(|(n, _)| *n)
                .collect();
            let bytes: u64 = mine.iter().map(|n| content(*n).len() as u64).sum();
            let usage = app.usage().unwrap();
            prop_assert_eq!((usage.bytes, usage.artifacts), (bytes, mine.len() as u64));
            prop_assert_eq!(app.total_bytes().unwrap(), bytes);
            let mut expected: Vec<String> = mine.iter().map(|n| hash(*n).to_string()).collect();
            expected.sort();
            let listed: Vec<String> = app
                .list_page(None, 1000)
                .unwrap()
                .into_iter()
                .map(|m| m.hash.to_string())
                .collect();
            prop_assert_eq!(listed, expected);
        }
    }
    let listed: Vec<String> = store.list().map(|m| m.unwrap().hash.to_string()).collect();
    let mut expected: Vec<String> = model.0.keys().map(|n| hash(*n).to_string()).collect();
    expected.sort();
    prop_assert_eq!(listed, expected);
    let total: u64 = model.0.keys().map(|n| content(*n).len() as u64).sum();
    prop_assert_eq!(store.total_bytes().unwrap(), total);
    for (i, app) in apps.iter().enumerate() {
        let mine = model
            .0
            .values()
            .filter(|o| o.contains_key(&Who::App(i as u8)))
            .count() as u64;
        prop_assert_eq!(app.count().unwrap(), mine);
        prop_assert_eq!(
            app.usage().unwrap().artifacts,
            mine,
            "quota usage tracks references"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ArtifactStore::open_memory().unwrap(), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(12), ..ProptestConfig::default() })]

    #[test]
    fn file_store_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        run(&ArtifactStore::open_dir(dir.path()).unwrap(), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    /// Whatever bytes a record file holds (truncated, garbage, another
    /// version), every operation answers with an error or a value: the core
    /// never traps and the host never panics.
    #[test]
    fn malformed_records_give_errors_never_panics(
        garbage in proptest::collection::vec(any::<u8>(), 0..120),
        keep_header in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open_dir(dir.path()).unwrap();
        let h = store.put(&content(3), ArtifactType::Generic).unwrap();
        let path = artifacts::FileBackend::open(dir.path()).unwrap().record_path(artifacts::backend::Space::Shared, &h);
        let mut bytes = std::fs::read(&path).unwrap();
        if keep_header {
            // A real version and magic, then garbage.
            bytes.truncate(16);
            bytes.extend_from_slice(&garbage);
        } else {
            bytes = garbage;
        }
        std::fs::write(&path, &bytes).unwrap();
        let results = [
            store.get(&h).map(drop),
            store.stat(&h).map(drop),
            store.contains(&h).map(drop),
            store.release(&h).map(drop),
            store.put(&content(3), ArtifactType::Generic).map(drop),
            store.list_page(None, 10).map(drop),
            store.count().map(drop),
            store.gc(std::time::Duration::ZERO).map(drop),
        ];
        for r in results {
            prop_assert!(!matches!(r, Err(Error::Core(_))), "{r:?}");
        }
        // Other artifacts are unaffected by a neighbour's damage.
        let other = store.put(&content(4), ArtifactType::Generic).unwrap();
        prop_assert_eq!(store.get(&other).unwrap(), content(4));
    }
}
