//! The apps' `launch` imports (world `app`), served by a [`Launching`]:
//! types converted here, the work done by `apps::launch`.

use wasmtime::component::{HasData, Linker};

use super::bindings::app_launch;
use super::convert::{child_request, launch_error};
use crate::apps::{ChildLimits, LaunchError, Launching, MAX_LAUNCH_DEPTH};

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
