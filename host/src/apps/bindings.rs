//! The generated bindings of world `app`: what apps import. Its `types` are
//! the core world's (`core_component::types`), so each WIT type has one
//! Rust type and one conversion. Nothing outside `apps` names what is
//! generated here.

mod app_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "app",
        imports: { default: trappable },
        with: {
            "artifacts:store/types": crate::core_component::wit::types,
            "artifacts:store/streams.upload": crate::Upload,
            "artifacts:store/streams.download": crate::Download,
        },
    });
}

pub(crate) use crate::core_component::wit::types;
pub(crate) use app_world::artifacts::store::launch as app_launch;
pub(crate) use app_world::artifacts::store::names as app_names;
pub(crate) use app_world::artifacts::store::store as app_store;
pub(crate) use app_world::artifacts::store::streams as app_streams;
