//! The `blobstore` and `container` interfaces: containers and objects as
//! the app's names (see [`naming`](super::naming)), each call charged.

use wasmtime::component::Resource;

use super::bindings::{blobstore, container, types};
use super::naming::ContainerName;
use super::values::{IncomingValue, OutgoingValue};
use super::{BlobError, BlobView, Slot, answer};
use crate::apps::store_imports::room_for_name;
use crate::{AppView, ArtifactType, Hash};

/// An open container: its name (whether it still exists is checked by
/// each call).
#[derive(Debug)]
pub struct Container {
    name: ContainerName,
    _slot: Slot,
}

/// An open listing of a container's object names, read a page at a time
/// (in name order; names set or deleted meanwhile may or may not show).
#[derive(Debug)]
pub struct NameStream {
    container: ContainerName,
    /// The last name returned (the listing goes on after it).
    after: Option<String>,
    done: bool,
    _slot: Slot,
}

type Answer<T> = wasmtime::Result<Result<T, String>>;

/// Seconds since the Unix epoch (the WIT's `timestamp`) of a time in
/// milliseconds ([`Metadata::stored_at`](crate::Metadata)).
fn seconds(millis: u64) -> u64 {
    millis / 1000
}

/// Whether `c` exists for the app.
fn exists(view: &AppView, c: &ContainerName) -> Result<bool, BlobError> {
    Ok(view.names().get(&c.marker())?.is_some())
}

/// Fails unless `c` exists.
fn must_exist(view: &AppView, c: &ContainerName) -> Result<(), BlobError> {
    match exists(view, c)? {
        true => Ok(()),
        false => Err(BlobError::NoSuchContainer(c.as_str().to_string())),
    }
}

/// The artifact behind object `object` of `c`.
pub(super) fn object_hash(
    view: &AppView,
    c: &ContainerName,
    object: &str,
) -> Result<Hash, BlobError> {
    view.names()
        .get(&c.object(object)?)?
        .ok_or_else(|| BlobError::NoSuchObject {
            container: c.as_str().to_string(),
            object: object.to_string(),
        })
}

/// Points object `object` of `c` (which must exist) at `hash`, which the
/// app holds; `cap` is a launched child's cap on its names.
pub(super) fn set_object(
    view: &AppView,
    cap: Option<u32>,
    c: &ContainerName,
    object: &str,
    hash: &Hash,
) -> Result<(), BlobError> {
    let name = c.object(object)?;
    must_exist(view, c)?;
    room_for_name(view, cap, &name)?;
    view.names().set(&name, hash)?;
    Ok(())
}

impl BlobView<'_> {
    /// A new container resource for `name`.
    fn open_container(&mut self, name: ContainerName) -> Answer<Resource<Container>> {
        match self.ctx.handles.take() {
            Ok(slot) => Ok(Ok(self.table.push(Container { name, _slot: slot })?)),
            Err(e) => answer(Err(e)),
        }
    }

    /// The name of the container `c` is.
    fn container_name(&self, c: &Resource<Container>) -> wasmtime::Result<ContainerName> {
        Ok(self.table.get(c)?.name.clone())
    }

    /// Deletes every object of `c`: a charged call per page listed and
    /// per object deleted.
    fn clear_objects(&mut self, c: &ContainerName) -> Result<(), BlobError> {
        let prefix = c.objects();
        loop {
            let page = self.charged(0, |view| {
                let names = view.names();
                Ok(names.list_page(&prefix, None, names.limit())?)
            })?;
            if page.is_empty() {
                return Ok(());
            }
            for tag in page {
                self.charged(0, |view| Ok(view.names().delete(&tag.name).map(drop)?))?;
            }
        }
    }

    /// Copies `src` to `dest`: `dest` names the same artifact (nothing is
    /// copied: equal values are stored once).
    fn copy(&mut self, src: &types::ObjectId, dest: &types::ObjectId) -> Result<(), BlobError> {
        let cap = self.store.max_names;
        self.charged(0, |view| {
            let from = ContainerName::parse(&src.container)?;
            let to = ContainerName::parse(&dest.container)?;
            let hash = object_hash(view, &from, &src.object)?;
            set_object(view, cap, &to, &dest.object, &hash)
        })
    }
}

impl blobstore::Host for BlobView<'_> {
    fn create_container(&mut self, name: String) -> Answer<Resource<Container>> {
        let cap = self.store.max_names;
        let created = self.charged(0, |view| {
            let c = ContainerName::parse(&name)?;
            if exists(view, &c)? {
                return Err(BlobError::ContainerExists(name.clone()));
            }
            room_for_name(view, cap, &c.marker())?;
            // The marker's artifact: charged like any put; the name then
            // holds it, and the put's own reference is dropped.
            let hash = view.put(&c.marker_content(), ArtifactType::Generic)?;
            let named = view.names().replace(&c.marker(), None, &hash);
            view.release(&hash)?;
            match named {
                Ok(()) => Ok(c),
                Err(crate::Error::NameConflict { .. }) => Err(BlobError::ContainerExists(name)),
                Err(e) => Err(e.into()),
            }
        });
        match created {
            Ok(c) => self.open_container(c),
            Err(e) => answer(Err(e)),
        }
    }

    fn get_container(&mut self, name: String) -> Answer<Resource<Container>> {
        let found = self.charged(0, |view| {
            let c = ContainerName::parse(&name)?;
            must_exist(view, &c)?;
            Ok(c)
        });
        match found {
            Ok(c) => self.open_container(c),
            Err(e) => answer(Err(e)),
        }
    }

    fn delete_container(&mut self, name: String) -> Answer<()> {
        let deleted = (|| {
            let c = ContainerName::parse(&name)?;
            self.charged(0, |view| must_exist(view, &c))?;
            self.clear_objects(&c)?;
            self.charged(0, |view| Ok(view.names().delete(&c.marker()).map(drop)?))
        })();
        answer(deleted)
    }

    fn container_exists(&mut self, name: String) -> Answer<bool> {
        answer(self.charged(0, |view| exists(view, &ContainerName::parse(&name)?)))
    }

    fn copy_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        answer(self.copy(&src, &dest))
    }

    fn move_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        let moved = (|| {
            self.copy(&src, &dest)?;
            if (&src.container, &src.object) == (&dest.container, &dest.object) {
                return Ok(());
            }
            // Not atomic: a crash here leaves both names (the value is
            // never lost).
            self.charged(0, |view| {
                let from = ContainerName::parse(&src.container)?;
                Ok(view.names().delete(&from.object(&src.object)?).map(drop)?)
            })
        })();
        answer(moved)
    }
}

impl container::Host for BlobView<'_> {}

impl container::HostContainer for BlobView<'_> {
    fn name(&mut self, c: Resource<Container>) -> Answer<String> {
        Ok(Ok(self.container_name(&c)?.as_str().to_string()))
    }

    fn info(&mut self, c: Resource<Container>) -> Answer<types::ContainerMetadata> {
        let c = self.container_name(&c)?;
        answer(self.charged(0, |view| {
            let marker = view.names().get(&c.marker())?;
            let hash = marker.ok_or_else(|| BlobError::NoSuchContainer(c.as_str().into()))?;
            Ok(types::ContainerMetadata {
                name: c.as_str().to_string(),
                created_at: seconds(view.stat(&hash)?.stored_at),
            })
        }))
    }

    fn get_data(
        &mut self,
        c: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> Answer<Resource<IncomingValue>> {
        let c = self.container_name(&c)?;
        let value = self.incoming(&c, &name, start, end);
        match value {
            Ok(value) => Ok(Ok(self.table.push(value)?)),
            Err(e) => answer(Err(e)),
        }
    }

    fn write_data(
        &mut self,
        c: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> Answer<()> {
        let c = self.container_name(&c)?;
        let checked = self.charged(0, |view| {
            c.object(&name)?;
            must_exist(view, &c)
        });
        if let Err(e) = checked {
            return answer(Err(e));
        }
        answer(self.table.get_mut(&data)?.write_to(c, name))
    }

    fn list_objects(&mut self, c: Resource<Container>) -> Answer<Resource<NameStream>> {
        let c = self.container_name(&c)?;
        if let Err(e) = self.charged(0, |view| must_exist(view, &c)) {
            return answer(Err(e));
        }
        match self.ctx.handles.take() {
            Ok(slot) => Ok(Ok(self.table.push(NameStream {
                container: c,
                after: None,
                done: false,
                _slot: slot,
            })?)),
            Err(e) => answer(Err(e)),
        }
    }

    fn delete_object(&mut self, c: Resource<Container>, name: String) -> Answer<()> {
        let c = self.container_name(&c)?;
        answer(self.charged(0, |view| {
            Ok(view.names().delete(&c.object(&name)?).map(drop)?)
        }))
    }

    fn delete_objects(&mut self, c: Resource<Container>, names: Vec<String>) -> Answer<()> {
        let c = self.container_name(&c)?;
        // One charged call per name: a long list runs the app out of fuel,
        // not the host out of time.
        for name in names {
            let deleted = self.charged(0, |view| {
                Ok(view.names().delete(&c.object(&name)?).map(drop)?)
            });
            if let Err(e) = deleted {
                return answer(Err(e));
            }
        }
        Ok(Ok(()))
    }

    fn has_object(&mut self, c: Resource<Container>, name: String) -> Answer<bool> {
        let c = self.container_name(&c)?;
        answer(self.charged(0, |view| Ok(view.names().get(&c.object(&name)?)?.is_some())))
    }

    fn object_info(
        &mut self,
        c: Resource<Container>,
        name: String,
    ) -> Answer<types::ObjectMetadata> {
        let c = self.container_name(&c)?;
        answer(self.charged(0, |view| {
            let meta = view.stat(&object_hash(view, &c, &name)?)?;
            Ok(types::ObjectMetadata {
                name,
                container: c.as_str().to_string(),
                created_at: seconds(meta.stored_at),
                size: meta.size,
            })
        }))
    }

    fn clear(&mut self, c: Resource<Container>) -> Answer<()> {
        let c = self.container_name(&c)?;
        let cleared = self
            .charged(0, |view| must_exist(view, &c))
            .and_then(|()| self.clear_objects(&c));
        answer(cleared)
    }

    fn drop(&mut self, c: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

impl BlobView<'_> {
    /// Up to `n` more names of `stream` (at most the name limit), and
    /// whether the listing is over.
    fn next_names(&mut self, stream: &Resource<NameStream>, n: u64) -> Answer<(Vec<String>, bool)> {
        let s = self.table.get(stream)?;
        if s.done || n == 0 {
            return Ok(Ok((Vec::new(), s.done)));
        }
        let (container, after) = (s.container.clone(), s.after.clone());
        let page = self.charged(0, |view| {
            let names = view.names();
            let n = u32::try_from(n).unwrap_or(u32::MAX).min(names.limit());
            let page = names.list_page(&container.objects(), after.as_deref(), n)?;
            Ok((page.len() < n as usize, page))
        });
        let (done, page) = match page {
            Ok(page) => page,
            Err(e) => return answer(Err(e)),
        };
        let s = self.table.get_mut(stream)?;
        s.done = done;
        if let Some(last) = page.last() {
            s.after = Some(last.name.clone());
        }
        let objects = page
            .iter()
            .filter_map(|t| container.object_of(&t.name).map(str::to_string))
            .collect();
        Ok(Ok((objects, done)))
    }
}

impl container::HostStreamObjectNames for BlobView<'_> {
    fn read_stream_object_names(
        &mut self,
        stream: Resource<NameStream>,
        len: u64,
    ) -> Answer<(Vec<String>, bool)> {
        self.next_names(&stream, len)
    }

    fn skip_stream_object_names(
        &mut self,
        stream: Resource<NameStream>,
        num: u64,
    ) -> Answer<(u64, bool)> {
        Ok(self
            .next_names(&stream, num)?
            .map(|(names, done)| (names.len() as u64, done)))
    }

    fn drop(&mut self, stream: Resource<NameStream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}
