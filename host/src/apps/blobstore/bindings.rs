//! The generated bindings of `wasi:blobstore@0.2.0-draft` (vendored in
//! `wit-blobstore/`), reusing wasmtime-wasi's `wasi:io` streams so that the
//! values' streams are the streams every other WASI call knows. Nothing
//! outside `apps::blobstore` names what is generated here.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit-blobstore",
        world: "wasi:blobstore/imports",
        imports: { default: trappable },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/container.container": crate::apps::blobstore::containers::Container,
            "wasi:blobstore/container.stream-object-names": crate::apps::blobstore::containers::NameStream,
            "wasi:blobstore/types.outgoing-value": crate::apps::blobstore::values::OutgoingValue,
            "wasi:blobstore/types.incoming-value": crate::apps::blobstore::values::IncomingValue,
        },
    });
}

pub(crate) use generated::wasi::blobstore::{blobstore, container, types};
