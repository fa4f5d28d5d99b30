//! The app engine's instance pool (wasmtime's pooling allocator) and the
//! static limits it adds.

use wasmtime::PoolingAllocationConfig;

use super::limits::AppLimits;

/// How many apps one [`AppHost`](super::AppHost) runs at once, at most: the slots of its
/// instance pool. A run past them fails with [`Error::Busy`](crate::Error::Busy) and the
/// running apps carry on.
pub const MAX_CONCURRENT_APPS: u32 = 64;

/// The most elements any one table of an app may have: a component that
/// declares a larger table is refused when loaded, and a table does not
/// grow past it (4 Mi elements, which the default 64 MiB budget counts at
/// [`TABLE_ELEMENT_BYTES`](super::limits::TABLE_ELEMENT_BYTES) apiece).
pub const MAX_TABLE_ELEMENTS: usize = 4 << 20;

/// The most linear memories and tables one core module of an app may
/// define: a module with more is refused when loaded (the counts of
/// [`AppLimits`] apply to the app as a whole, at run time).
pub const MAX_MEMORIES_PER_MODULE: u32 = 16;
/// See [`MAX_MEMORIES_PER_MODULE`].
pub const MAX_TABLES_PER_MODULE: u32 = 128;

/// Bytes of each pooled memory and fiber stack, and of each table, kept
/// mapped and zeroed between runs, so that a warm run reuses them instead
/// of mapping and faulting in fresh pages (what the on-demand allocator
/// spent most of a warm start on). At most 64 KiB x (256 memories + 64
/// stacks) + 4 KiB x 2048 tables, 28 MiB, stay resident however many apps
/// have run.
const KEEP_RESIDENT: usize = 64 << 10;
/// See [`KEEP_RESIDENT`]: tables are many and small.
const TABLE_KEEP_RESIDENT: usize = 4 << 10;

/// The app engine's instance pool: every app's memories, tables, instances
/// and fiber stack come from slots made once per host and reused, which is
/// what makes a warm start cost tens of microseconds. Sized for
/// [`MAX_CONCURRENT_APPS`] apps at the default [`AppLimits`] counts; each
/// slot reserves address space, not memory (a memory slot 4 GiB, a table
/// slot 32 MiB), and the budget ([`AppLimits::memory_bytes`]) still caps
/// what an app may use of them.
pub(super) fn app_pool() -> PoolingAllocationConfig {
    let d = AppLimits::default();
    let per_app =
        |n: usize| MAX_CONCURRENT_APPS.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_CONCURRENT_APPS)
        .total_stacks(MAX_CONCURRENT_APPS)
        .total_core_instances(per_app(d.max_instances))
        .total_memories(per_app(d.max_memories))
        .total_tables(per_app(d.max_tables))
        .max_memories_per_module(MAX_MEMORIES_PER_MODULE)
        .max_tables_per_module(MAX_TABLES_PER_MODULE)
        .table_elements(MAX_TABLE_ELEMENTS)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .async_stack_keep_resident(KEEP_RESIDENT);
    pool
}
