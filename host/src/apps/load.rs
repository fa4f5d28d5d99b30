//! Loading apps: read and verified through the store, checked against the
//! compile limits, compiled (or found compiled), linked and cached.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi::p2::bindings::CommandPre;

use super::{App, AppHost, CompileLimits, check_component, first_line};
use crate::{ArtifactStore, Error, Hash};

impl AppHost {
    /// Loads the app stored under `hash`: read and verified through the
    /// store, then compiled, unless a compiled copy is cached.
    pub fn load(&self, hash: &Hash) -> Result<App, Error> {
        if let Some(app) = self.cached(hash) {
            return Ok(app);
        }
        let bytes = read_component(&self.store, hash, &self.compile_limits)?;
        self.compile(*hash, &bytes)
    }

    /// Loads the component stored under `hash` for an app that launches it:
    /// visible to `view` (held or granted, else `NotFound`), no larger than
    /// the compile limits, read and verified through `view` (`charge` is
    /// told its size first) unless it is compiled already.
    pub(crate) fn load_for(
        &self,
        view: &crate::AppView,
        hash: &Hash,
        charge: impl FnOnce(u64) -> Result<(), Error>,
    ) -> Result<App, Error> {
        let size = view.stat(hash)?.size;
        if let Some(app) = self.cached(hash) {
            return Ok(app);
        }
        too_large(hash, size, &self.compile_limits)?;
        charge(size)?;
        let bytes = view.get(hash)?;
        self.compile(*hash, &bytes)
    }

    /// Loads an app from bytes (not stored), compiled unless cached.
    pub fn load_file(&self, bytes: &[u8]) -> Result<App, Error> {
        let key = Hash::of(bytes);
        if let Some(app) = self.cached(&key) {
            return Ok(app);
        }
        self.compile(key, bytes)
    }

    fn cached(&self, key: &Hash) -> Option<App> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn compile(&self, hash: Hash, bytes: &[u8]) -> Result<App, Error> {
        let cached = self.disk.as_ref().and_then(|d| d.get(&self.engine, &hash));
        let component = match cached {
            Some(component) => component,
            None => {
                check_component(bytes, &self.compile_limits)?;
                self.compilations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let component = Component::new(&self.engine, bytes).map_err(|e| {
                    Error::InvalidApp(format!("not a valid component: {}", first_line(&e)))
                })?;
                if let Some(disk) = &self.disk {
                    disk.put(&self.engine, &hash, &component);
                }
                component
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::InvalidApp(format!("{e:#}")))?;
        let pre = CommandPre::new(pre).map_err(|e| {
            Error::InvalidApp(format!("not a command (no wasi:cli/run export): {e:#}"))
        })?;
        let app = App { hash, pre };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, app.clone());
        Ok(app)
    }
}

/// Compiles the component stored under `hash` for `engine`, after reading
/// it through the store (so its integrity is checked) and checking it
/// against `limits` (size first, then [`check_component`]). For embedders
/// running apps in their own engine; they should also give each app's
/// store a [`ResourceLimiter`](wasmtime::ResourceLimiter) and the
/// [`charge_host_work`](super::charge_host_work) call hook.
pub fn load_component(
    store: &ArtifactStore,
    engine: &Engine,
    hash: &Hash,
    limits: &CompileLimits,
) -> Result<Component, Error> {
    let bytes = read_component(store, hash, limits)?;
    check_component(&bytes, limits)?;
    Component::new(engine, &bytes)
        .map_err(|e| Error::InvalidApp(format!("not a valid component: {}", first_line(&e))))
}

/// The verified bytes of the component stored under `hash`, if it is no
/// larger than `limits` allow (checked from its metadata, before reading).
fn read_component(
    store: &ArtifactStore,
    hash: &Hash,
    limits: &CompileLimits,
) -> Result<Vec<u8>, Error> {
    too_large(hash, store.stat(hash)?.size, limits)?;
    store.get(hash)
}

/// Refuses a component of `size` bytes that `limits` do not let compile.
fn too_large(hash: &Hash, size: u64, limits: &CompileLimits) -> Result<(), Error> {
    if size > limits.max_component_bytes {
        return Err(Error::InvalidApp(format!(
            "{hash} is {size} bytes, more than the {} a component may have",
            limits.max_component_bytes
        )));
    }
    Ok(())
}
