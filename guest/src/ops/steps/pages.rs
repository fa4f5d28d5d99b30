//! Walking a paged listing of the backend's.

use super::LIST_LIMIT;
use crate::ops::error::Outcome;

/// Calls `each` on every page of `list` (a paged listing) until a short page.
pub(in crate::ops) fn pages<T: Clone>(
    mut list: impl FnMut(Option<&str>) -> Outcome<Vec<T>>,
    key: impl Fn(&T) -> String,
    mut each: impl FnMut(Vec<T>) -> Outcome<()>,
) -> Outcome<()> {
    let mut after: Option<String> = None;
    loop {
        let page = list(after.as_deref())?;
        let full = page.len() as u32 >= LIST_LIMIT;
        after = page.last().map(&key);
        each(page)?;
        if !full {
            return Ok(());
        }
    }
}
