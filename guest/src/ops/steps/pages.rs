//! Walking a paged listing of the backend's.

use super::LIST_LIMIT;
use crate::hash::Hash;
use crate::ops::error::Outcome;

/// Calls `each` on every page of `list` (a paged listing) until a short page.
pub(in crate::ops) fn pages<T: Clone>(
    mut list: impl FnMut(Option<&Hash>) -> Outcome<Vec<T>>,
    key: impl Fn(&T) -> Hash,
    mut each: impl FnMut(Vec<T>) -> Outcome<()>,
) -> Outcome<()> {
    let mut after: Option<Hash> = None;
    loop {
        let page = list(after.as_ref())?;
        let full = page.len() as u32 >= LIST_LIMIT;
        after = page.last().map(&key);
        each(page)?;
        if !full {
            return Ok(());
        }
    }
}
