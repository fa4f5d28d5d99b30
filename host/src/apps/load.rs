//! Loading apps: read and verified through the store, checked against the
//! compile limits, compiled (or found compiled), linked and cached.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi::p2::bindings::CommandPre;

use super::limits::CompileLimits;
use super::{App, AppHost, CodeStats, check_component, first_line};
use crate::{ArtifactStore, Error, Hash};

impl AppHost {
    /// Loads the app stored under `hash`: read and verified through the
    /// store, then compiled, unless a compiled copy is cached.
    #[crate::traced(load, hash = hash)]
    pub fn load(&self, hash: &Hash) -> Result<App, Error> {
        if let Some(app) = self.cached(hash) {
            return Ok(app);
        }
        let bytes = read_component(&self.store, hash, &self.compile_limits)?;
        self.compile_as(*hash, &bytes, true)
    }

    /// Loads the component stored under `hash` for an app that launches it:
    /// visible to `view` (held or granted, else `NotFound`) and, unless it
    /// is compiled already, no larger than the compile limits, read and
    /// verified through `view`, checked against the compile limits and
    /// compiled (kept in memory, not in the disk cache: what apps launch is
    /// theirs to choose). `pay` is told each step before it is taken (it
    /// charges the step or refuses it): reading the component, then
    /// compiling it once the check has passed (a component the check
    /// refuses is never offered for compiling).
    pub(crate) fn load_for(
        &self,
        view: &crate::AppView,
        hash: &Hash,
        mut pay: impl FnMut(LoadStep<'_>) -> Result<(), Error>,
    ) -> Result<App, Error> {
        let size = view.stat(hash)?.size;
        if let Some(app) = self.cached(hash) {
            return Ok(app);
        }
        too_large(hash, size, &self.compile_limits)?;
        pay(LoadStep::Read(size))?;
        let bytes = view.get(hash)?;
        let stats = check_component(&bytes, &self.compile_limits)?;
        pay(LoadStep::Compile(&stats))?;
        let component = self.compile(&bytes, None)?;
        self.link(*hash, &component)
    }

    /// Loads an app from bytes (not stored), compiled unless cached.
    #[crate::traced(load_file, bytes = bytes.len())]
    pub fn load_file(&self, bytes: &[u8]) -> Result<App, Error> {
        let key = Hash::of(bytes);
        if let Some(app) = self.cached(&key) {
            return Ok(app);
        }
        self.compile_as(key, bytes, true)
    }

    fn cached(&self, key: &Hash) -> Option<App> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .get(key)
            .cloned()
    }

    /// Compiles `bytes` (or loads them compiled from the disk cache, and
    /// keeps them there if `persist`).
    fn compile_as(&self, hash: Hash, bytes: &[u8], persist: bool) -> Result<App, Error> {
        let disk = self.disk.as_ref().filter(|_| persist);
        let component = match disk.and_then(|d| d.get(&self.engine, &hash)) {
            Some(component) => component,
            None => {
                check_component(bytes, &self.compile_limits)?;
                self.compile(bytes, disk.map(|d| (d.as_ref(), &hash)))?
            }
        };
        self.link(hash, &component)
    }

    /// Compiles `bytes`, already checked against the compile limits (and
    /// keeps the result in `disk` under its hash, if given).
    fn compile(
        &self,
        bytes: &[u8],
        disk: Option<(&crate::CompileCache, &Hash)>,
    ) -> Result<Component, Error> {
        self.compilations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| Error::InvalidApp(format!("not a valid component: {}", first_line(&e))))?;
        if let Some((disk, hash)) = disk {
            disk.put(&self.engine, hash, &component);
        }
        Ok(component)
    }

    /// Links `component` as a command and keeps it in the memory cache.
    fn link(&self, hash: Hash, component: &Component) -> Result<App, Error> {
        let pre = self
            .linker
            .instantiate_pre(component)
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

/// A step of loading a component for a launch, offered to be paid for
/// before it is taken (see `AppHost::load_for`).
pub(crate) enum LoadStep<'a> {
    /// Reading and verifying the component, of this many bytes.
    Read(u64),
    /// Compiling it: what the check counted in it.
    Compile(&'a CodeStats),
}

/// The most compiled apps a host keeps in memory (each some hundreds of
/// KiB); past it the longest kept goes first.
pub const MAX_CACHED_APPS: usize = 256;

/// Compiled apps by hash, at most [`MAX_CACHED_APPS`].
#[derive(Default)]
pub(super) struct AppCache {
    map: std::collections::HashMap<Hash, App>,
    order: std::collections::VecDeque<Hash>,
}

impl AppCache {
    fn insert(&mut self, hash: Hash, app: App) {
        if self.map.insert(hash, app).is_none() {
            self.order.push_back(hash);
        }
        while self.order.len() > MAX_CACHED_APPS {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
    }
}

/// Compiles the component stored under `hash` for `engine`, after reading
/// it through the store (so its integrity is checked) and checking it
/// against `limits` (size first, then [`check_component`]). For embedders
/// running apps in their own engine, linked with
/// [`add_to_linker`](super::add_to_linker), each in a store made ready by
/// [`prepare`](super::prepare).
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
