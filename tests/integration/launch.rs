//! Apps that launch stored components (the WIT `launch` interface): the
//! launcher test app installs two versions of a plugin, names them,
//! launches `plugin@latest`, moves the name and launches again, then tries
//! every way a child could take more than it was given or see what it was
//! not; and a parent cannot get more by asking its children for it.

use std::time::{Duration, Instant};

use artifacts::apps::limits::MAX_LAUNCH_DEPTH;
use artifacts::apps::{AppConfig, AppHost, AppOutcome};
use artifacts::backend::Space;
use artifacts::{ArtifactStore, Error, Hash, Quota};

use crate::fixture::each_backend;

const LAUNCHER: &[u8] = include_bytes!("../apps/launcher.wasm");
const V1: &[u8] = include_bytes!("../apps/launchee-v1.wasm");
const V2: &[u8] = include_bytes!("../apps/launchee-v2.wasm");

/// The launcher's quota: small enough that its children's quota, drawn
/// from what it has left, shows.
const QUOTA: Quota = Quota {
    max_bytes: 4 << 20,
    max_artifacts: 100,
    max_artifact_bytes: 64 << 20,
};

fn launcher(args: &[&str]) -> AppConfig {
    let mut c = AppConfig::new("launcher");
    c.args = args.iter().map(|a| a.to_string()).collect();
    c.quota = QUOTA;
    c.allow_launch = true;
    c
}

fn run(host: &AppHost, config: &AppConfig) -> Result<AppOutcome, Error> {
    let app = host.load_file(LAUNCHER).unwrap();
    host.run(&app, config)
}

fn stdout(outcome: &AppOutcome) -> String {
    assert_eq!(
        outcome.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    String::from_utf8_lossy(&outcome.stdout).into_owned()
}

/// The number in `line`'s `NAME(N)`.
fn payload(line: &str) -> u64 {
    let start = line.find('(').unwrap() + 1;
    line[start..line.find(')').unwrap()].parse().unwrap()
}

fn everything(store: &ArtifactStore) -> Vec<Hash> {
    let mut all: Vec<Hash> = store.list().map(|m| m.unwrap().hash).collect();
    all.sort();
    all
}

each_backend! {
    fn the_launcher_runs_its_plugin_by_name_and_the_plugin_stays_within_what_it_was_given(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let out = stdout(&run(&host, &launcher(&["demo"])).unwrap());
        let lines: Vec<&str> = out.lines().collect();
        let line = |prefix: &str| -> &str {
            (lines.iter().find(|l| l.starts_with(prefix)).copied())
                .unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}"))
        };
        let hello = |v: u32| format!(
            "v{v} as launcher/plugin: stdin \"hi\", sees 1 artifact(s), 1 name(s)"
        );
        let launched: Vec<&&str> = lines.iter().filter(|l| l.starts_with("latest: ")).collect();
        assert_eq!(
            launched,
            [&format!("latest: exit 0: {}", hello(1)).as_str(), &format!("latest: exit 0: {}", hello(2)).as_str()],
            "@latest, then @latest moved: its own identity, and only what it stored"
        );
        assert_eq!(line("again: "), format!("again: exit 0: {}", hello(2)), "it starts with nothing");
        assert_eq!(line("peek: "), "peek: exit 0: peek: not-found", "the parent's secret is not the child's");
        assert_eq!(line("peek granted: "), "peek granted: exit 0: peek: found");

        // Memory: what it was given, or what the parent had left.
        assert_eq!(line("hog: "), format!("hog: LaunchError::OutOfMemory({})", 8 << 20));
        let all = payload(line("hog all: "));
        let parent = AppConfig::new("x").limits.memory_bytes as u64;
        assert!(all < parent && all > parent / 2, "hog all: {all} of the parent's {parent}");
        assert_eq!(line("spin: "), "spin: LaunchError::OutOfFuel(50000000)");
        assert_eq!(line("sleep: "), "sleep: LaunchError::Timeout(300)");
        assert_eq!(line("shout: "), "shout: LaunchError::OutputLimit(1000)");
        // Quota: what it was given, or what the parent had left.
        assert_eq!(line("fill: "), format!("fill: exit 0: fill: quota-exceeded {}", 1 << 20));
        let held = (V1.len() + V2.len() + b"the launcher's secret".len()) as u64;
        assert_eq!(
            line("fill all: "),
            format!("fill all: exit 0: fill: quota-exceeded {}", QUOTA.max_bytes - held)
        );

        // Launching in turn, as deep as the limit.
        let deepest = format!("launcher/plugin{}", "/n".repeat(MAX_LAUNCH_DEPTH as usize - 1));
        assert!(
            out.contains(&format!("nest: exit 0: {deepest}: LaunchError::TooDeep({MAX_LAUNCH_DEPTH})\n")),
            "{out}"
        );
        assert!(out.contains("launcher/plugin/n ran a child\nlauncher/plugin ran a child\n"), "{out}");
        assert_eq!(line("bad name refused: "), "bad name refused: true");
        assert_eq!(line("not held: "), format!("not held: LaunchError::Store(Error::NotFound(\"{}\"))", "0".repeat(64)));
        assert!(
            line("not a component: ").starts_with("not a component: LaunchError::InvalidComponent("),
            "{out}"
        );
        assert_eq!(line("the launcher sees"), "the launcher sees 3 artifact(s)");

        // What the children stored went with their runs: the store holds
        // the launcher's three artifacts and nothing else.
        let mut expected = vec![Hash::of(V1), Hash::of(V2), Hash::of(b"the launcher's secret")];
        expected.sort();
        assert_eq!(everything(&store), expected);
        // Each component compiled once: the launcher and two plugins,
        // however many times they ran.
        assert_eq!(host.compiled(), 3);
    }
}

#[test]
fn an_app_the_host_does_not_let_launch_cannot() {
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let mut config = launcher(&["try"]);
    config.allow_launch = false;
    let out = stdout(&run(&host, &config).unwrap());
    assert_eq!(out.trim(), "try: LaunchError::NotAllowed");
    config.allow_launch = true;
    let out = stdout(&run(&host, &config).unwrap());
    assert!(
        out.starts_with("try: exit 0: v1 as launcher/plugin"),
        "{out}"
    );
}

#[test]
fn a_child_that_spins_with_all_it_may_spends_its_parents_fuel_not_more() {
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let mut config = launcher(&["spin-all"]);
    config.limits.fuel = 500_000_000;
    let started = Instant::now();
    let err = run(&host, &config).unwrap_err();
    assert_eq!(
        err,
        Error::OutOfFuel {
            app: "launcher".into(),
            fuel: 500_000_000
        },
        "the child burned what the parent had; the parent pays and stops"
    );
    // 5 * 10^8 fuel is a fraction of a second of wasm on any machine here.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_child_that_sleeps_with_all_it_may_ends_at_its_parents_deadline() {
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let mut config = launcher(&["sleep-all"]);
    config.limits.wall_time = Duration::from_secs(2);
    let app = host.load_file(LAUNCHER).unwrap();
    host.load_file(V1).unwrap();
    let started = Instant::now();
    let err = host.run(&app, &config).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, Error::Timeout { app, .. } if app == "launcher"),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "the parent's 2 s bound the child's hour-long sleep: took {took:?}"
    );
}

each_backend! {
    /// What a child's run creates goes with it, its owner space included:
    /// N children with distinct names, each storing and naming something,
    /// leave no space of theirs (gc, `health` and the host's `remove` walk
    /// every space). The launcher, which holds the plugin it installed,
    /// keeps its own. Before, each child left an empty space for good: 21
    /// spaces after 20 children on the memory and file backends.
    fn children_leave_no_owner_space_behind(fx) {
        let store = fx.open();
        let host = AppHost::new(store).unwrap();
        let n = 20;
        let out = stdout(&run(&host, &launcher(&["children", &n.to_string()])).unwrap());
        assert_eq!(out.trim_end(), format!("children: {n} of {n} ran"));
        let (spaces, dirs) = fx.owner_spaces();
        eprintln!("after {n} children: {} owner spaces listed, {dirs:?} owner directories", spaces.len());
        assert_eq!(spaces.len(), 1, "the launcher's space alone: {spaces:?}");
        assert!(dirs.is_none_or(|d| d == 1), "{dirs:?} owner directories");
        let held = fx.backend().list_records(Space::Owner(spaces[0]), None, 10).unwrap();
        assert!(!held.is_empty(), "the launcher's space holds its plugin");
    }
}
