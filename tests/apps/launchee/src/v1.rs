//! Version 1 of the plugin the launcher runs (see `plugin.rs`).
const VERSION: u32 = 1;
include!("plugin.rs");
