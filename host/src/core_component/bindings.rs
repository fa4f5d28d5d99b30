//! The generated bindings: one `bindgen!` per world. Nothing outside
//! `core_component` names what is generated here.

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

#[cfg(feature = "apps")]
/// World `app`: what apps import. Its `types` are the core world's, so each
/// WIT type has one Rust type and one conversion.
pub(crate) mod app_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "app",
        imports: { default: trappable },
        with: {
            "artifacts:store/types": super::core_world::artifacts::store::types,
            "artifacts:store/streams.upload": crate::Upload,
            "artifacts:store/streams.download": crate::Download,
        },
    });
}

#[cfg(feature = "apps")]
pub(crate) use app_world::artifacts::store::launch as app_launch;
#[cfg(feature = "apps")]
pub(crate) use app_world::artifacts::store::names as app_names;
#[cfg(feature = "apps")]
pub(crate) use app_world::artifacts::store::store as app_store;
#[cfg(feature = "apps")]
pub(crate) use app_world::artifacts::store::streams as app_streams;
pub(crate) use core_world::Core;
pub(crate) use core_world::CorePre;
pub(crate) use core_world::artifacts::store::backend;
pub(crate) use core_world::artifacts::store::types;
pub(crate) use core_world::exports::artifacts::store::ops;
