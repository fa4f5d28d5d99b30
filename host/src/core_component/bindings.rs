//! The generated bindings of world `core`. Nothing outside `core_component`
//! names what is generated here, except the shared `types` (the apps' world,
//! bound in `apps::bindings`, reuses them).

/// World `core`: what the host runs the store's rules in. Its `types`
/// interface is the one both worlds use.
pub(crate) mod core_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "core",
        imports: { default: trappable },
        trappable_error_type: {
            "artifacts:store/backend.backend-error" => crate::BackendError,
        },
    });
}

pub(crate) use core_world::Core;
pub(crate) use core_world::CorePre;
pub(crate) use core_world::artifacts::store::backend;
pub(crate) use core_world::artifacts::store::types;
pub(crate) use core_world::exports::artifacts::store::ops;
