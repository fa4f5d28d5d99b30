//! Progress bars for large puts and gets, on standard error when it is a
//! terminal (hidden otherwise, so scripts and pipes see nothing).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Transfers of this many bytes or more show a bar: 64 MiB.
pub(crate) const SHOWN_FROM: u64 = 64 << 20;

/// A bar for moving `size` bytes (`None`: unknown, no bar): drawn only on a
/// terminal and for at least [`SHOWN_FROM`] bytes, else hidden.
pub(crate) fn bar(size: Option<u64>, what: &'static str) -> ProgressBar {
    match size {
        Some(size) if size >= SHOWN_FROM && std::io::stderr().is_terminal() => {
            let bar = ProgressBar::new(size);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
            ) {
                bar.set_style(style);
            }
            bar.set_message(what);
            bar
        }
        _ => ProgressBar::hidden(),
    }
}
