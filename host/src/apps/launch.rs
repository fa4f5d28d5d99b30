//! Apps that launch stored components (the WIT `launch` interface): the
//! child's identity, the limits it draws from its parent, and the parent
//! paying for it. The WIT glue is `launch_imports`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::OutputBudget;
use super::compile_check::FUEL_PER_CHECKED_BYTE;
use super::limits::AppLimits;
use super::load::LoadStep;
use super::{AppConfig, AppHost, AppOutcome, Stdio};
use crate::{AppView, Error, Hash, Quota, Usage};

/// How many launches deep apps may go: an app the host runs is at depth 0,
/// the children it launches at 1, and an app at this depth may not launch.
pub const MAX_LAUNCH_DEPTH: u32 = 4;

/// The longest child name, in bytes.
pub const MAX_CHILD_NAME: usize = 32;

/// The most artifacts a launched child may hold (whatever its parent has
/// left): what it holds is dropped when its run ends, on its parent's
/// time, so this bounds that clean-up.
pub const MAX_CHILD_ARTIFACTS: u64 = 64;

/// The most names a launched child may keep (see [`MAX_CHILD_ARTIFACTS`]).
pub const MAX_CHILD_NAMES: u32 = 64;

/// The most components that one run's apps (an app and everything it
/// launches) may make the host compile: components already compiled (by
/// anyone) do not count, nor components the compile check refuses.
pub const MAX_FAMILY_COMPILES: u32 = 8;

/// What a child may use (the WIT `launch.limits`), each capped by what its
/// parent has left; `u64::MAX` asks for all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChildLimits {
    pub fuel: u64,
    pub memory_bytes: u64,
    pub wall_time_ms: u64,
    pub max_output: u64,
    pub max_bytes: u64,
    pub max_artifacts: u64,
}

impl ChildLimits {
    /// Everything the parent has left.
    pub const MAX: Self = Self {
        fuel: u64::MAX,
        memory_bytes: u64::MAX,
        wall_time_ms: u64::MAX,
        max_output: u64::MAX,
        max_bytes: u64::MAX,
        max_artifacts: u64::MAX,
    };
}

/// A parent's `run` (the WIT `launch.child`), its hashes parsed.
#[derive(Debug, Clone)]
pub(crate) struct ChildRequest {
    pub component: Hash,
    pub name: String,
    pub args: Vec<String>,
    pub stdin: bytes::Bytes,
    pub limits: ChildLimits,
    pub grants: Vec<Hash>,
    pub allow_launch: bool,
}

/// Why a child did not run to an exit (the WIT `launch-error`).
#[derive(Debug)]
pub(crate) enum LaunchError {
    NotAllowed,
    TooDeep(u32),
    InvalidName(String),
    /// Reading the component or a grant; also the parent's own failures
    /// (out of fuel for the call), which the glue turns into traps.
    Store(Error),
    InvalidComponent(String),
    OutOfFuel(u64),
    OutOfMemory(u64),
    Timeout(Duration),
    OutputLimit(u64),
    Trapped(String),
    Busy,
}

impl From<Error> for LaunchError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidApp(why) => Self::InvalidComponent(why),
            other => Self::Store(other),
        }
    }
}

/// Where a running app stands among launches, kept in its store's data:
/// the host that runs it, whether and how deep it may launch, and what it
/// has to give (its output allowance; its fuel, deadline, memory and quota
/// are read from its store context and budget when it launches).
pub(crate) struct Lineage {
    pub(super) host: AppHost,
    pub(super) allowed: bool,
    pub(super) depth: u32,
    pub(super) output: Arc<OutputBudget>,
    pub(super) limits: AppLimits,
    pub(super) family: Arc<Family>,
}

/// A parent's launch, as its `launch` imports see it: its lineage, its
/// memory left and its store context (which charges the call and knows
/// its fuel).
pub(crate) struct Launching<'a> {
    pub(super) lineage: &'a Lineage,
    pub(super) memory_left: u64,
    pub(crate) store: &'a mut super::AppStoreCtx,
}

impl Launching<'_> {
    /// Starts a launch call: charged like a store call handing over
    /// `request_bytes` (its name, arguments, input and grants), before
    /// anything else, whether the launch is then refused or not.
    pub(crate) fn begin(&mut self, request_bytes: u64) -> Result<(), Error> {
        self.store.work.begin()?;
        self.store.work.bytes(request_bytes)
    }

    /// Ends a launch call: the backend records it made are charged.
    pub(crate) fn end(&mut self) -> Result<(), Error> {
        self.store.work.end()
    }

    /// Runs `child` to completion for this parent, charged to it (between
    /// [`begin`](Self::begin) and [`end`](Self::end)).
    #[crate::traced(launch, owner = self.store.view().id(), hash = child.component)]
    pub(crate) fn run(&mut self, child: ChildRequest) -> Result<AppOutcome, LaunchError> {
        let lineage = self.lineage;
        if !lineage.allowed {
            return Err(LaunchError::NotAllowed);
        }
        if lineage.depth >= MAX_LAUNCH_DEPTH {
            return Err(LaunchError::TooDeep(MAX_LAUNCH_DEPTH));
        }
        let id = child_id(self.store.view(), &child.name)?;
        let deadline = self.store.work.deadline;
        let (parent, work) = self.store.parts();
        // Read through the parent's view (what it cannot see is
        // `not-found`, as for its own gets), checked, and compiled only
        // within the family's compile allowance (which a component the
        // check refuses does not use), before the parent's deadline, at the
        // price the check puts on compiling it.
        let app = (lineage.host).load_for(parent, &child.component, |step| {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout {
                    app: parent.id().to_string(),
                    limit: lineage.limits.wall_time,
                });
            }
            match step {
                LoadStep::Read(size) => {
                    lineage.family.may_compile()?;
                    work.bytes(size)?;
                    work.fuel(size.saturating_mul(FUEL_PER_CHECKED_BYTE))
                }
                LoadStep::Compile(stats) => {
                    lineage.family.compile()?;
                    work.fuel(stats.compile_fuel())
                }
            }
        });
        // Past the parent's deadline, the child gets no time at all.
        let app = app.map_err(|e| match e {
            Error::Timeout { .. } => LaunchError::Timeout(Duration::ZERO),
            other => other.into(),
        })?;
        for grant in &child.grants {
            parent.stat(grant)?;
        }
        let config = self.child_config(child, id)?;
        let view = self.store.view().child_app(config.id.clone(), config.quota);
        // A child starts with nothing (a host that died during an earlier
        // run of it may have left something) and ends with nothing.
        drop_everything(&view)?;
        let before = waiting_of(&view)?;
        let (result, fuel_used) = (lineage.host).run_in(
            &app,
            &config,
            view.clone(),
            lineage.depth + 1,
            lineage.family.clone(),
        );
        let dropped = drop_everything(&view)
            .and_then(|()| leave_waiting(&view, before, self.store.view(), &lineage.family));
        let out = result
            .as_ref()
            .map_or(0, |o| (o.stdout.len() + o.stderr.len()) as u64);
        lineage
            .output
            .take(usize::try_from(out).unwrap_or(usize::MAX));
        self.store.work.fuel(fuel_used)?;
        self.store.work.bytes(out)?;
        dropped?;
        let outcome = result.map_err(|e| child_error(e, &config))?;
        // The child's output, counted in its memory while it ran, is held
        // for the parent until the call has handed it over (the parent's
        // memory grows to take it meanwhile). It fits: the child's memory
        // came out of what the parent had left.
        let mut handing = self.store.memory.hold();
        handing
            .set(usize::try_from(out).unwrap_or(usize::MAX))
            .map_err(|_| LaunchError::OutOfMemory(config.limits.memory_bytes as u64))?;
        self.store.handing_back = Some(handing);
        Ok(outcome)
    }

    /// The child's configuration: its limits, each the least of what was
    /// asked and what the parent has left.
    fn child_config(&self, child: ChildRequest, id: String) -> Result<AppConfig, Error> {
        let lineage = self.lineage;
        let asked = &child.limits;
        let parent = self.store.view();
        let usage = parent.usage()?;
        let quota = parent.quota();
        // What its children left waiting this run is spoken for too.
        let waiting = parent.children_waiting();
        // What the parent has staged (unfinished uploads and values) is
        // spoken for: the child may not stage or store it again.
        let bytes_left = (quota.max_bytes)
            .saturating_sub(usage.bytes)
            .saturating_sub(waiting.bytes)
            .saturating_sub(self.store.staged_total.total());
        let wall_left = (self.store.work.deadline).map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        // The host holds the child's input and arguments while it runs:
        // they come out of the memory the child may have.
        let held = (child.stdin.len() as u64)
            .saturating_add(child.args.iter().map(|a| a.len() as u64).sum());
        let memory = asked
            .memory_bytes
            .min(self.memory_left.saturating_sub(held));
        let max_bytes = asked.max_bytes.min(bytes_left);
        let limits = AppLimits {
            memory_bytes: usize::try_from(memory).unwrap_or(usize::MAX),
            fuel: asked.fuel.min(self.store.work.fuel_available()),
            wall_time: Duration::from_millis(asked.wall_time_ms).min(wall_left),
            max_output: asked.max_output.min(lineage.output.left()),
            ..lineage.limits
        };
        Ok(AppConfig {
            id,
            quota: Quota {
                max_bytes,
                max_artifacts: (asked.max_artifacts)
                    .min(
                        (quota.max_artifacts)
                            .saturating_sub(usage.artifacts)
                            .saturating_sub(waiting.artifacts),
                    )
                    .min(MAX_CHILD_ARTIFACTS),
                max_artifact_bytes: quota.max_artifact_bytes.min(max_bytes),
            },
            limits,
            args: child.args,
            grants: child.grants,
            stdio: Stdio::Capture,
            stdin: child.stdin,
            allow_launch: child.allow_launch,
        })
    }
}

/// What one family of launches (an app the host runs and everything it
/// launches, however deep) may still make the host compile.
#[derive(Debug)]
pub(crate) struct Family {
    compiles_left: std::sync::atomic::AtomicU32,
    /// The launched apps whose releases the root run's end settles.
    launched: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Family {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            compiles_left: std::sync::atomic::AtomicU32::new(MAX_FAMILY_COMPILES),
            launched: Default::default(),
        })
    }

    /// Notes that `id`'s releases are to be settled when the root run ends.
    fn to_settle(&self, id: &str) {
        let mut launched = self.launched.lock().unwrap_or_else(|p| p.into_inner());
        if !launched.contains(id) {
            launched.insert(id.to_string());
        }
    }

    /// Settles what the family's launched apps and then `root` left waiting
    /// (see [`AppView::settle`]): the root run is over.
    pub(crate) fn settle(&self, root: &AppView) -> Result<(), Error> {
        let launched =
            std::mem::take(&mut *self.launched.lock().unwrap_or_else(|p| p.into_inner()));
        for id in &launched {
            root.settle_owner(id)?;
        }
        root.settle().map(drop)
    }

    /// Whether the family may still compile a component.
    fn may_compile(&self) -> Result<(), Error> {
        if self
            .compiles_left
            .load(std::sync::atomic::Ordering::Acquire)
            == 0
        {
            return Err(Self::spent());
        }
        Ok(())
    }

    /// Takes one compile of the family's allowance.
    fn compile(&self) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        self.compiles_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .map(drop)
            .map_err(|_| Self::spent())
    }

    fn spent() -> Error {
        Error::InvalidApp(format!(
            "this run's apps already made the host compile {MAX_FAMILY_COMPILES} components, the most a run may"
        ))
    }
}

/// The identity of `parent`'s child `name`: `PARENT/NAME`.
fn child_id(parent: &AppView, name: &str) -> Result<String, LaunchError> {
    let valid = (1..=MAX_CHILD_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !valid {
        let shown: String = name.chars().take(40).collect();
        return Err(LaunchError::InvalidName(format!(
            "{shown:?}{} is not 1 to {MAX_CHILD_NAME} ASCII letters, digits or ._-",
            if shown.len() < name.len() { "..." } else { "" }
        )));
    }
    let id = format!("{}/{name}", parent.id());
    if id.len() > 64 {
        return Err(LaunchError::InvalidName(format!(
            "the child's identity {id:?} would be {} bytes, more than 64",
            id.len()
        )));
    }
    Ok(id)
}

/// Drops everything `view`'s owner holds: its names, then its references
/// (so that what a child stored lasts only for its run).
fn drop_everything(view: &AppView) -> Result<(), Error> {
    let names = view.names();
    for tag in names.list("")? {
        names.delete(&tag.name)?;
    }
    loop {
        let page = view.list_page(None, view.list_limit())?;
        if page.is_empty() {
            return Ok(());
        }
        for artifact in &page {
            match view.remove(&artifact.hash) {
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Under private dedup, what `view`'s owner has waiting to be settled
/// (after [`drop_everything`], all its usage is that): what an earlier
/// launch of the same child this run left, counted by its parent already.
fn waiting_of(view: &AppView) -> Result<Usage, Error> {
    if !view.core.private_dedup() {
        return Ok(Usage::default());
    }
    view.usage()
}

/// Under private dedup, what a child's releases left waiting (see
/// [`AppView::settle`]) beyond what it had `before` stays counted against
/// its parent's quota, with what its own children left, and is settled
/// when the root run ends, so that no parent can time it.
fn leave_waiting(
    child: &AppView,
    before: Usage,
    parent: &AppView,
    family: &Family,
) -> Result<(), Error> {
    if !child.core.private_dedup() {
        return Ok(());
    }
    let own = child.usage()?;
    let theirs = child.children_waiting();
    let left = Usage {
        bytes: (own.bytes.saturating_sub(before.bytes)).saturating_add(theirs.bytes),
        artifacts: (own.artifacts.saturating_sub(before.artifacts))
            .saturating_add(theirs.artifacts),
    };
    parent.add_children_waiting(left);
    family.to_settle(child.id());
    Ok(())
}

/// A child's failure, as its parent hears of it.
fn child_error(e: Error, config: &AppConfig) -> LaunchError {
    match e {
        Error::OutOfFuel { .. } => LaunchError::OutOfFuel(config.limits.fuel),
        Error::OutOfMemory { limit, .. } => LaunchError::OutOfMemory(limit as u64),
        Error::Timeout { limit, .. } => LaunchError::Timeout(limit),
        Error::OutputLimit { limit, .. } => LaunchError::OutputLimit(limit),
        Error::AppTrap { message, .. } => LaunchError::Trapped(message),
        Error::Busy { .. } => LaunchError::Busy,
        other => LaunchError::from(other),
    }
}
