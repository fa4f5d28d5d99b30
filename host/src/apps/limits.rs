//! What an app may cost the host, in one place: its limits ([`AppLimits`],
//! [`CompileLimits`]), the fixed caps (`MAX_*`) and fuel charges (`FUEL_*`);
//! and how they are enforced: one memory budget for all its linear memories
//! and tables (`Budget`), and fuel charged for the work its store calls make
//! the host do (`HostWork`, `charge_host_work`).

pub use super::compile_check::{
    CompileLimits, FUEL_PER_BLOCK_DEPTH, FUEL_PER_CHECKED_BYTE, FUEL_PER_CODE_BYTE,
    FUEL_PER_FUNCTION, FUEL_PER_JOIN_VALUE,
};
pub use super::config::AppLimits;
pub use super::launch::{
    MAX_CHILD_ARTIFACTS, MAX_CHILD_NAME, MAX_CHILD_NAMES, MAX_FAMILY_COMPILES, MAX_LAUNCH_DEPTH,
};
pub use super::load::MAX_CACHED_APPS;
pub use super::pool::{
    MAX_CONCURRENT_APPS, MAX_MEMORIES_PER_MODULE, MAX_TABLE_ELEMENTS, MAX_TABLES_PER_MODULE,
};
use wasmtime::{CallHook, ResourceLimiter, StoreContextMut};

use super::memory::MemoryAccount;
use crate::Error;
use crate::core_component::backend_work;

/// The most uploads and downloads (the WIT `streams` interface) an app has
/// open at once; one more is `quota-exceeded` of kind `streams`.
pub const MAX_OPEN_STREAMS: u32 = 4;

/// The most component-model handles (WASI and store resources: pollables,
/// streams, fields, containers, ...) an app may hold at once, across all
/// its instances; one more traps ("store handle limit exceeded"). Each
/// costs the host a table entry and the resource behind it, about 250
/// bytes for a clock's pollable (measured: 95,000 held added 23 MB of
/// resident memory), outside the memory budget: this caps it near
/// 2.5 MiB. (wasmtime's default is 100,000, and the WASI table's
/// 1,000,000.) A launched child holds at most [`max_handles_at`] its
/// depth: half its parent's.
pub const MAX_HANDLES: usize = 10_000;

/// The most handles a run `depth` launches deep may hold: [`MAX_HANDLES`]
/// halved at each launch. A launching app waits for its child, so the runs
/// alive at once are one chain, which holds fewer than twice
/// `MAX_HANDLES` however deep it goes (each run's store has its own count).
pub fn max_handles_at(depth: u32) -> usize {
    MAX_HANDLES >> depth.min(usize::BITS - 1)
}

/// The most bytes one `wasi:random` call returns (`get-random-bytes`,
/// `get-insecure-random-bytes`); asking for more traps. The host makes
/// the bytes in its own memory before copying them into the app's, so
/// without it (wasmtime's default is 64 MiB) an app limited to 16 MiB made
/// the host hold 64 MiB more for each call.
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// The most bytes an app's upload `write` takes, and a download `read`
/// returns, at once: the host holds at most this much per open stream.
pub const STREAM_PIECE_BYTES: u32 = 4 << 20;

/// What the budget counts per table element, in bytes. wasmtime 48 stores
/// a funcref element in 8 bytes and an externref in 4 (a continuation in
/// 16), in a vector that may have up to twice its length allocated after a
/// `table.grow`: 16 covers every case.
pub const TABLE_ELEMENT_BYTES: usize = 16;

/// Fuel charged for each store call an app makes, whatever it does: taking
/// a core instance, one call into it and at least one backend request (a
/// few to tens of microseconds of host CPU; the app's own wasm runs about a
/// thousand fuel per microsecond).
pub const FUEL_PER_CALL: u64 = 20_000;
/// Fuel charged per byte the host hashes or copies for a store call (the
/// content of a `put`, `get` or `verify`: lifted, copied into a core
/// instance, hashed, read from the backend), and per byte of every backend
/// record the core reads or writes (an owner's names record, read whole by
/// every names call, is up to 288 KB).
pub const FUEL_PER_BYTE: u64 = 4;
/// Fuel charged per record the core reads or writes in the backend for a
/// store call (what makes `count`, `total-bytes` and `list` cost more in a
/// larger store), measured by the host as the backend is called.
pub const FUEL_PER_RECORD: u64 = 5_000;

/// Caps everything an app's store holds in memory with one budget, its
/// [`MemoryAccount`] (which the buffers the host holds for the app draw on
/// too): every linear memory, and every table at [`TABLE_ELEMENT_BYTES`]
/// per element, counted from the moment it is created (wasmtime reports an
/// instance's initial memories and tables as growth from 0); plus how many
/// instances, memories and tables it may have at all.
#[derive(Debug)]
pub(crate) struct Budget {
    account: MemoryAccount,
    max_instances: usize,
    max_memories: usize,
    max_tables: usize,
}

impl Budget {
    pub(crate) fn new(limits: &crate::apps::limits::AppLimits) -> Self {
        Self {
            account: MemoryAccount::new(limits.memory_bytes),
            max_instances: limits.max_instances,
            max_memories: limits.max_memories,
            max_tables: limits.max_tables,
        }
    }

    /// The account it counts against.
    pub(crate) fn account(&self) -> &MemoryAccount {
        &self.account
    }

    /// Bytes counted so far.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.account.used()
    }

    /// Bytes of the budget not used yet.
    pub(crate) fn left(&self) -> usize {
        self.account.left()
    }

    /// Whether anything was refused (the trap that follows is then
    /// reported as the budget's).
    pub(crate) fn denied(&self) -> bool {
        self.account.denied()
    }

    fn grow(&mut self, more: Option<usize>) -> bool {
        self.account.take(more)
    }
}

impl ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.checked_sub(current)))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            desired
                .checked_sub(current)
                .and_then(|n| n.checked_mul(TABLE_ELEMENT_BYTES)),
        ))
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn memories(&self) -> usize {
        self.max_memories
    }

    fn tables(&self) -> usize {
        self.max_tables
    }
}

/// The least hostcall fuel gives, so that a put somewhat over an app's
/// limit gets its `quota-exceeded` or `too-large` answer rather than a trap.
pub const MIN_HOSTCALL_BYTES: usize = 16 << 20;

/// How many bytes one call from an app may hand the host (wasmtime's
/// hostcall fuel; beyond it the app traps before anything is copied out of
/// its memory): the largest put it may make (its quota's artifact size, or
/// the store's limit if less), at least [`MIN_HOSTCALL_BYTES`], plus 1 MiB
/// for the rest of the call.
pub(crate) fn hostcall_fuel(quota: &crate::Quota, store_max: u64) -> usize {
    let largest = quota.max_artifact_bytes.min(store_max);
    usize::try_from(largest)
        .unwrap_or(usize::MAX)
        .max(MIN_HOSTCALL_BYTES)
        .saturating_add(1 << 20)
}

/// Whether `err` is wasmtime refusing an instantiation for one of the
/// [`ResourceLimiter`] counts (instances, memories, tables).
pub(crate) fn is_count_limit(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|e| e.to_string().contains("resource limit exceeded"))
}

/// The fuel an app's store calls cost, kept in its store's data: each call
/// is charged [`FUEL_PER_CALL`], [`FUEL_PER_BYTE`] for the bytes it makes
/// the host hash or copy and [`FUEL_PER_RECORD`] per backend record.
/// What is known from the arguments (a put's size, a get's or verify's
/// size from its metadata) is charged before the work, so an app without
/// the fuel does not get it done; the records and bytes the core then
/// actually reads are charged after.
///
/// Needs the store's [call hook](wasmtime::Store::call_hook) to be
/// [`charge_host_work`]: it tells `HostWork` the fuel left on the way in
/// and takes the charge from the store on the way out.
#[derive(Debug, Default)]
pub(crate) struct HostWork {
    /// Fuel left when the current host call began (None: fuel not known,
    /// nothing is refused up front).
    fuel_left: Option<u64>,
    /// Fuel charged by the current host call, taken on its return.
    pending: u64,
    /// Backend work counted when the current store call began.
    start: (u64, u64),
    /// Bytes the current store call was charged for up front.
    prepaid: u64,
    /// The app's id, for the error.
    app: String,
    /// When the app's wall clock runs out, if it has one: a host call
    /// that returns after it stops the app ([`DeadlinePassed`]).
    pub(crate) deadline: Option<std::time::Instant>,
    /// Work done outside store calls, by host objects the app holds.
    pub(crate) meter: WorkMeter,
    /// How many host calls are under way, one inside another (a memory
    /// growing while a result is lowered).
    depth: u32,
    /// Made for an [`AppState`](super::AppState) whose store was not
    /// [prepared](super::prepare): no call is served (its limits are not
    /// installed).
    pub(crate) unprepared: bool,
}

/// Fuel owed for work that host objects an app holds do outside its store
/// calls (its `wasi:blobstore` values' streams, written and read through
/// `wasi:io`): shared with those objects, and taken by [`charge_host_work`]
/// on the return of the host call that did the work.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkMeter(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl WorkMeter {
    /// Runs `op`, which makes the host handle `bytes` bytes, and owes what
    /// it cost: [`FUEL_PER_BYTE`] for each of them (or of the bytes the core
    /// read or wrote, if more) and [`FUEL_PER_RECORD`] for each backend
    /// record the core read or wrote.
    pub(crate) fn measure<R>(&self, bytes: u64, op: impl FnOnce() -> R) -> R {
        let start = backend_work();
        let result = op();
        let (records, core_bytes) = backend_work();
        let records = records.saturating_sub(start.0);
        let bytes = core_bytes.saturating_sub(start.1).max(bytes);
        let fuel = records
            .saturating_mul(FUEL_PER_RECORD)
            .saturating_add(bytes.saturating_mul(FUEL_PER_BYTE));
        self.0.fetch_add(fuel, std::sync::atomic::Ordering::Relaxed);
        result
    }

    /// Takes what is owed.
    fn take(&self) -> u64 {
        self.0.swap(0, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The trap that stops an app whose host call returned after its wall
/// clock ran out; the host reports it as [`Error::Timeout`].
#[derive(Debug)]
pub(crate) struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the app ran past its wall-clock limit")
    }
}

impl std::error::Error for DeadlinePassed {}

impl HostWork {
    pub(crate) fn new(app: &str) -> Self {
        Self {
            app: app.to_string(),
            ..Self::default()
        }
    }

    /// Starts a store call: charges [`FUEL_PER_CALL`], before the work.
    pub(crate) fn begin(&mut self) -> Result<(), Error> {
        if self.unprepared {
            return Err(Error::InvalidApp(
                "the app's wasmtime store was not prepared (artifacts::apps::prepare): \
                 its limits are not installed"
                    .into(),
            ));
        }
        self.start = backend_work();
        self.prepaid = 0;
        self.charge(FUEL_PER_CALL)
    }

    /// Charges `bytes` of content the call is about to make the host hash
    /// or copy, before the work: refused (the app is out of fuel) if it
    /// has less left.
    pub(crate) fn bytes(&mut self, bytes: u64) -> Result<(), Error> {
        self.prepaid = self.prepaid.saturating_add(bytes);
        self.charge(bytes.saturating_mul(FUEL_PER_BYTE))
    }

    /// Ends a store call: charges every backend record the core read or
    /// wrote since [`begin`](Self::begin), and the bytes it read or wrote
    /// beyond those charged already.
    pub(crate) fn end(&mut self) -> Result<(), Error> {
        let (records, bytes) = backend_work();
        let records = records.saturating_sub(self.start.0);
        let bytes = bytes
            .saturating_sub(self.start.1)
            .saturating_sub(self.prepaid);
        self.charge(
            records
                .saturating_mul(FUEL_PER_RECORD)
                .saturating_add(bytes.saturating_mul(FUEL_PER_BYTE)),
        )
    }

    /// Charges `fuel` the call spent otherwise (a launched child's).
    pub(crate) fn fuel(&mut self, fuel: u64) -> Result<(), Error> {
        self.charge(fuel)
    }

    /// The fuel the app has left, less what the current call was charged
    /// so far (0 if not known: see [`charge_host_work`]).
    pub(crate) fn fuel_available(&self) -> u64 {
        self.fuel_left.unwrap_or(0).saturating_sub(self.pending)
    }

    fn charge(&mut self, fuel: u64) -> Result<(), Error> {
        self.pending = self.pending.saturating_add(fuel);
        match self.fuel_left {
            Some(left) if left < self.pending => Err(Error::OutOfFuel {
                app: self.app.clone(),
                fuel: 0,
            }),
            _ => Ok(()),
        }
    }
}

/// The [call hook](wasmtime::Store::call_hook) that makes an app pay for
/// its store calls in fuel and stops it at its deadline, `get` finding its
/// [`AppStoreCtx`](crate::apps::AppStoreCtx) (installed by
/// [`prepare`](super::prepare), on every app's store). The charge takes the store's
/// fuel down (to 0 if it is more than what is left, and the call then
/// traps with [`wasmtime::Trap::OutOfFuel`]).
pub(crate) fn charge_host_work<T>(
    mut cx: StoreContextMut<'_, T>,
    hook: CallHook,
    get: fn(&mut T) -> &mut crate::apps::AppStoreCtx,
) -> wasmtime::Result<()> {
    match hook {
        CallHook::CallingHost => {
            // What is pending stays: a host call can be entered inside
            // another (the app's `cabi_realloc` runs while a result is
            // lowered, and may yield), and the outer call's charge must
            // not be dropped; every return takes what is pending.
            let fuel = cx.get_fuel().ok();
            let work = &mut get(cx.data_mut()).work;
            work.fuel_left = fuel;
            work.depth = work.depth.saturating_add(1);
        }
        CallHook::ReturningFromHost => {
            let ctx = get(cx.data_mut());
            ctx.work.depth = ctx.work.depth.saturating_sub(1);
            if ctx.work.depth == 0 {
                // The outermost call's results are in the app's memory.
                ctx.handing_back = None;
            }
            let work = &mut ctx.work;
            let pending = std::mem::take(&mut work.pending).saturating_add(work.meter.take());
            work.fuel_left = None;
            // Fuel-driven yields, where the wall clock is checked, restart
            // their count at every charge: an app calling the store in a
            // loop never reaches one, so its calls check the clock.
            if work
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
            {
                return Err(DeadlinePassed.into());
            }
            if pending > 0 {
                let fuel = cx.get_fuel()?;
                cx.set_fuel(fuel.saturating_sub(pending))?;
                if pending > fuel {
                    return Err(wasmtime::Trap::OutOfFuel.into());
                }
            }
        }
        CallHook::CallingWasm | CallHook::ReturningFromWasm => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::limits::AppLimits;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut b = Budget::new(&AppLimits {
            memory_bytes: 1 << 20,
            ..AppLimits::default()
        });
        assert!(b.memory_growing(0, 512 << 10, None).unwrap());
        assert!(b.table_growing(0, 16 << 10, None).unwrap(), "256 KiB");
        assert_eq!(b.used(), 768 << 10);
        assert!(
            !b.memory_growing(0, 512 << 10, None).unwrap(),
            "a second memory"
        );
        assert!(b.denied());
        assert!(b.memory_growing(512 << 10, 768 << 10, None).unwrap());
        assert_eq!(b.used(), 1 << 20);
        assert!(!b.table_growing(16 << 10, 16 << 10 | 1, None).unwrap());
        assert!(
            !b.table_growing(0, usize::MAX, None).unwrap(),
            "no overflow"
        );
        assert!(
            !b.memory_growing(10, 5, None).unwrap(),
            "nonsense is refused"
        );
    }
}
