//! Version 2 of the plugin the launcher runs (see `plugin.rs`).
const VERSION: u32 = 2;
include!("plugin.rs");
