//! The apps' `launch` imports (world `app`), served by a [`Launching`]:
//! types converted here, the work done by `apps::launch`.

use wasmtime::component::{HasData, Linker};

use super::bindings::app_launch;
use super::limits::MAX_LAUNCH_DEPTH;
use super::store_ctx::app_hash;
use super::{AppOutcome, ChildLimits, ChildRequest, LaunchError, Launching};
use crate::core_component::app_error;

/// The [`HasData`] marker for [`add_launch_to_linker`].
struct AppLaunch;

impl HasData for AppLaunch {
    type Data<'a> = Launching<'a>;
}

/// Adds the WIT `launch` interface to `linker`, served by the [`Launching`]
/// that `get` makes of each store's data.
pub(crate) fn add_launch_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> Launching<'_>,
) -> wasmtime::Result<()> {
    app_launch::add_to_linker::<T, AppLaunch>(linker, get)
}

impl app_launch::Host for Launching<'_> {
    fn depth_limit(&mut self) -> wasmtime::Result<u32> {
        Ok(MAX_LAUNCH_DEPTH)
    }

    fn limits_max(&mut self) -> wasmtime::Result<app_launch::Limits> {
        Ok(ChildLimits::MAX.into())
    }

    fn run(
        &mut self,
        child: app_launch::Child,
    ) -> wasmtime::Result<Result<app_launch::Outcome, app_launch::LaunchError>> {
        // Charged for what the app handed over before anything else, so a
        // refused launch costs what a store call of its size does.
        let handed = (child.name.len() + child.stdin.len() + 64 * child.grants.len())
            .saturating_add(child.args.iter().map(String::len).sum());
        if let Err(e) = self.begin(handed as u64) {
            return launch_error(LaunchError::Store(e)).map(Err);
        }
        let result = child_request(child).and_then(|c| Launching::run(self, c));
        if let Err(e) = self.end() {
            return launch_error(LaunchError::Store(e)).map(Err);
        }
        match result {
            Ok(outcome) => Ok(Ok(outcome.into())),
            Err(e) => launch_error(e).map(Err),
        }
    }
}

impl From<app_launch::Limits> for ChildLimits {
    fn from(l: app_launch::Limits) -> Self {
        Self {
            fuel: l.fuel,
            memory_bytes: l.memory_bytes,
            wall_time_ms: l.wall_time_ms,
            max_output: l.max_output,
            max_bytes: l.max_bytes,
            max_artifacts: l.max_artifacts,
        }
    }
}

impl From<ChildLimits> for app_launch::Limits {
    fn from(l: ChildLimits) -> Self {
        Self {
            fuel: l.fuel,
            memory_bytes: l.memory_bytes,
            wall_time_ms: l.wall_time_ms,
            max_output: l.max_output,
            max_bytes: l.max_bytes,
            max_artifacts: l.max_artifacts,
        }
    }
}

/// A parent's request, its hashes parsed (an invalid one is `invalid-hash`).
fn child_request(c: app_launch::Child) -> Result<ChildRequest, LaunchError> {
    Ok(ChildRequest {
        component: app_hash(&c.component)?,
        grants: (c.grants.iter().map(|h| app_hash(h))).collect::<Result<Vec<_>, _>>()?,
        name: c.name,
        args: c.args,
        stdin: c.stdin.into(),
        limits: c.limits.into(),
        allow_launch: c.allow_launch,
    })
}

impl From<AppOutcome> for app_launch::Outcome {
    fn from(o: AppOutcome) -> Self {
        Self {
            exit_code: o.exit_code,
            stdout: o.stdout,
            stderr: o.stderr,
            fuel_used: o.fuel_used,
        }
    }
}

/// A launch error as the parent receives it; the parent's own failures
/// (out of fuel for the call) trap it, as in its other store calls.
fn launch_error(err: LaunchError) -> wasmtime::Result<app_launch::LaunchError> {
    use app_launch::LaunchError as W;
    Ok(match err {
        LaunchError::NotAllowed => W::NotAllowed,
        LaunchError::TooDeep(n) => W::TooDeep(n),
        LaunchError::InvalidName(why) => W::InvalidName(why),
        LaunchError::Store(e) => W::Store(app_error(e)?),
        LaunchError::InvalidComponent(why) => W::InvalidComponent(why),
        LaunchError::OutOfFuel(n) => W::OutOfFuel(n),
        LaunchError::OutOfMemory(n) => W::OutOfMemory(n),
        LaunchError::Timeout(t) => W::Timeout(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        LaunchError::OutputLimit(n) => W::OutputLimit(n),
        LaunchError::Trapped(why) => W::Trapped(why),
        LaunchError::Busy => W::Busy,
    })
}
