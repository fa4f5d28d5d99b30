//! The apps' `store` and `names` imports (world `app`), served by an
//! [`AppStoreCtx`]: hashes parsed and types converted here, the work done by
//! its typed calls.

use wasmtime::component::{HasData, Linker};

use super::AppStoreCtx;
use super::bindings::{app_names, app_store, app_streams, types};
use crate::core_component::{app_error, app_name_error, app_range_error};
use crate::{AppView, Error};

/// The [`HasData`] marker for [`add_app_store_to_linker`].
struct AppStore;

impl HasData for AppStore {
    type Data<'a> = &'a mut AppStoreCtx;
}

/// Adds the WIT `store` and `names` interfaces (and their `types`) to
/// `linker`, served by the [`AppStoreCtx`] that `get` finds in each store's data.
pub(crate) fn add_app_store_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut AppStoreCtx,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, AppStore>(linker, get)?;
    app_store::add_to_linker::<T, AppStore>(linker, get)?;
    app_names::add_to_linker::<T, AppStore>(linker, get)?;
    app_streams::add_to_linker::<T, AppStore>(linker, get)
}

impl types::Host for AppStoreCtx {}

/// A call's result as the app receives it (see [`app_error`]).
fn answer<T>(result: Result<T, Error>) -> wasmtime::Result<Result<T, types::Error>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(e) => app_error(e).map(Err),
    }
}

type Answer<T> = wasmtime::Result<Result<T, types::Error>>;

/// Each call charged by [`AppStoreCtx`] (which also parses the app's
/// hashes), served by its [`AppView`].
impl app_store::Host for AppStoreCtx {
    fn list_limit(&mut self) -> wasmtime::Result<u32> {
        Ok(self.view().list_limit())
    }
    fn put(&mut self, content: Vec<u8>, t: types::ArtifactType) -> Answer<String> {
        let size = content.len() as u64;
        let put = self.charged(size, |view| view.put(&content, t.into()));
        answer(put.map(|h| h.to_string()))
    }
    fn get(&mut self, hash: String) -> Answer<Vec<u8>> {
        answer(self.charged_read(&hash, AppView::get))
    }
    fn range_limit(&mut self) -> wasmtime::Result<u64> {
        Ok(crate::RANGE_LIMIT)
    }
    fn get_range(
        &mut self,
        hash: String,
        offset: u64,
        length: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, types::RangeError>> {
        // Charged for the bytes asked for (at most the limit) before the
        // work, and for what the core read (the path, or a rebuild) after.
        let asked = length.min(crate::RANGE_LIMIT);
        let got = self.charged(asked, |view| {
            view.get_length(&crate::apps::app_hash(&hash)?, offset, length)
        });
        match got {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(e) => app_range_error(e).map(Err),
        }
    }
    fn contains(&mut self, hash: String) -> Answer<bool> {
        answer(self.charged_hash(&hash, AppView::contains))
    }
    fn release(&mut self, hash: String) -> Answer<u64> {
        answer(self.charged_hash(&hash, AppView::release))
    }
    fn remove(&mut self, hash: String) -> Answer<()> {
        answer(self.charged_hash(&hash, AppView::remove))
    }
    fn stat(&mut self, hash: String) -> Answer<types::Metadata> {
        answer(self.charged_hash(&hash, AppView::stat).map(Into::into))
    }
    fn verify(&mut self, hash: String) -> Answer<types::Metadata> {
        answer(self.charged_read(&hash, AppView::verify).map(Into::into))
    }
    fn count(&mut self) -> Answer<u64> {
        answer(self.charged(0, AppView::count))
    }
    fn total_bytes(&mut self) -> Answer<u64> {
        answer(self.charged(0, AppView::total_bytes))
    }
    fn list(&mut self, after: Option<String>, limit: u32) -> Answer<Vec<types::Metadata>> {
        let page = self.charged_list(after.as_deref(), |view, after| view.list_page(after, limit));
        answer(page.map(|page| page.into_iter().map(Into::into).collect()))
    }
}

/// A names call's result as the app receives it.
fn named<T>(result: Result<T, Error>) -> NameAnswer<T> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(e) => app_name_error(e).map(Err),
    }
}

type NameAnswer<T> = wasmtime::Result<Result<T, types::NameError>>;

/// The app's names (see [`Names`](crate::Names)), each call charged like a
/// store call; a name is text the core checks, a hash is parsed here.
impl app_names::Host for AppStoreCtx {
    fn name_limit(&mut self) -> wasmtime::Result<u32> {
        Ok(self.view().names().limit())
    }
    fn tag_set(&mut self, name: String, hash: String) -> NameAnswer<Option<String>> {
        let cap = self.max_names;
        let before = self.charged_hash(&hash, |view, hash| {
            room_for_name(view, cap, &name)?;
            view.names().set(&name, hash)
        });
        named(before.map(|h| h.map(|h| h.to_string())))
    }
    fn tag_get(&mut self, name: String) -> NameAnswer<Option<String>> {
        let found = self.charged(0, |view| view.names().get(&name));
        named(found.map(|h| h.map(|h| h.to_string())))
    }
    fn tag_delete(&mut self, name: String) -> NameAnswer<Option<String>> {
        let before = self.charged(0, |view| view.names().delete(&name));
        named(before.map(|h| h.map(|h| h.to_string())))
    }
    fn tag_replace(
        &mut self,
        name: String,
        expected: Option<String>,
        new: String,
    ) -> NameAnswer<()> {
        let cap = self.max_names;
        named(self.charged_hash(&new, |view, new| {
            let expected = expected.as_deref().map(crate::apps::app_hash).transpose()?;
            if expected.is_none() {
                room_for_name(view, cap, &name)?;
            }
            view.names().replace(&name, expected.as_ref(), new)
        }))
    }
    fn tag_list(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> NameAnswer<Vec<types::Tag>> {
        let page = self.charged(0, |view| {
            view.names().list_page(&prefix, after.as_deref(), limit)
        });
        named(page.map(|page| page.into_iter().map(Into::into).collect()))
    }
}

/// Refuses a new name `name` to an app that keeps `cap` names already (a
/// launched child's cap; other apps have only the store's limit).
pub(crate) fn room_for_name(view: &AppView, cap: Option<u32>, name: &str) -> Result<(), Error> {
    let Some(cap) = cap else {
        return Ok(());
    };
    let names = view.names();
    let kept = names.list_page("", None, cap)?.len();
    if kept >= cap as usize && names.get(name)?.is_none() {
        return Err(Error::QuotaExceeded {
            kind: crate::QuotaKind::Names,
            limit: u64::from(cap),
            requested: u64::from(cap) + 1,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ArtifactStore, ArtifactType, MemoryBackend, Quota};

    /// The app boundary takes `blake3:<hex>` wherever a hash goes in (parsed
    /// by `Hash`'s one rule), answers with bare hex, and refuses any other
    /// prefix or case as `invalid-hash`.
    #[test]
    fn an_apps_hashes_may_take_the_digest_form() {
        let store = ArtifactStore::builder().open(MemoryBackend::new()).unwrap();
        let view = store.app("app-1", Quota::UNLIMITED).unwrap();
        let hash = view.put(b"config", ArtifactType::Generic).unwrap();
        let digest = format!("blake3:{hash}");
        let mut ctx = AppStoreCtx::new(view);
        let get = <AppStoreCtx as app_store::Host>::get;
        assert_eq!(get(&mut ctx, digest.clone()).unwrap().unwrap(), b"config");
        let stat = <AppStoreCtx as app_store::Host>::stat(&mut ctx, digest.clone());
        assert_eq!(stat.unwrap().unwrap().hash, hash.to_string());
        assert!(
            <AppStoreCtx as app_store::Host>::contains(&mut ctx, digest.clone())
                .unwrap()
                .unwrap()
        );
        let set = <AppStoreCtx as app_names::Host>::tag_set;
        assert_eq!(
            set(&mut ctx, "cfg".into(), digest.clone())
                .unwrap()
                .unwrap(),
            None
        );
        let got = <AppStoreCtx as app_names::Host>::tag_get(&mut ctx, "cfg".into());
        assert_eq!(got.unwrap().unwrap(), Some(hash.to_string()));
        for bad in [
            format!("sha256:{hash}"),
            format!("BLAKE3:{hash}"),
            format!("blake3:{}", hash.to_string().to_uppercase()),
            format!("blake3: {hash}"),
        ] {
            assert!(
                matches!(
                    get(&mut ctx, bad.clone()).unwrap(),
                    Err(types::Error::InvalidHash(_))
                ),
                "{bad}"
            );
        }
        let release = <AppStoreCtx as app_store::Host>::release;
        assert!(release(&mut ctx, digest).unwrap().is_ok());
    }

    /// The app's `get-range` import: bytes, and each error as its own case.
    #[test]
    fn an_apps_get_range_answers_with_range_errors() {
        let store = ArtifactStore::builder().open(MemoryBackend::new()).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 239) as u8).collect();
        let view = store.app("app-1", Quota::UNLIMITED).unwrap();
        let hash = view.put(&data, ArtifactType::Generic).unwrap().to_string();
        let mut ctx = AppStoreCtx::new(view);
        let host = <AppStoreCtx as app_store::Host>::get_range;
        assert_eq!(
            host(&mut ctx, hash.clone(), 1000, 10).unwrap().unwrap(),
            &data[1000..1010]
        );
        assert!(matches!(
            host(&mut ctx, hash.clone(), 299_999, 2).unwrap(),
            Err(types::RangeError::OutOfRange(types::RangeFailure {
                offset: 299_999,
                length: 2,
                size: 300_000
            }))
        ));
        assert!(matches!(
            host(&mut ctx, hash.clone(), 0, crate::RANGE_LIMIT + 1).unwrap(),
            Err(types::RangeError::TooLong(crate::RANGE_LIMIT))
        ));
        assert!(matches!(
            host(&mut ctx, "nope".into(), 0, 1).unwrap(),
            Err(types::RangeError::Store(types::Error::InvalidHash(_)))
        ));
        let mut other = AppStoreCtx::new(store.app("app-2", Quota::UNLIMITED).unwrap());
        assert!(matches!(
            host(&mut other, hash, 0, 1).unwrap(),
            Err(types::RangeError::Store(types::Error::NotFound(_)))
        ));
        assert_eq!(
            <AppStoreCtx as app_store::Host>::range_limit(&mut ctx).unwrap(),
            crate::RANGE_LIMIT
        );
    }

    /// A range reaching past `u64::MAX` is refused for what was asked: its
    /// `out-of-range` reports the length asked for, and one longer than the
    /// limit is `too-long` (the end was clamped to `u64::MAX`, reporting
    /// 5 bytes for 10 and `out-of-range` for a range over the limit).
    #[test]
    fn a_range_near_the_end_of_u64_reports_what_was_asked() {
        let store = ArtifactStore::builder().open(MemoryBackend::new()).unwrap();
        let view = store.app("app-1", Quota::UNLIMITED).unwrap();
        let hash = view
            .put(b"some bytes", ArtifactType::Generic)
            .unwrap()
            .to_string();
        let mut ctx = AppStoreCtx::new(view);
        let host = <AppStoreCtx as app_store::Host>::get_range;
        let offset = u64::MAX - 5;
        let Err(types::RangeError::OutOfRange(failure)) =
            host(&mut ctx, hash.clone(), offset, 10).unwrap()
        else {
            panic!("not out-of-range");
        };
        assert_eq!(
            (failure.offset, failure.length, failure.size),
            (offset, 10, 10)
        );
        let shown = crate::Error::from(types::RangeError::OutOfRange(failure)).to_string();
        assert!(
            shown.contains(&format!("bytes {offset}..{}", u128::from(offset) + 10)),
            "{shown}"
        );
        assert!(matches!(
            host(&mut ctx, hash, offset, crate::RANGE_LIMIT + 1).unwrap(),
            Err(types::RangeError::TooLong(crate::RANGE_LIMIT))
        ));
    }
}
