//! Containers and objects as an app's names: the one place a container
//! or object name becomes a name of the app's `names` (and back).
//!
//! Under the reserved prefix [`PREFIX`]:
//!
//! ```text
//! wasi:blobstore/CONTAINER          the container's marker (points at a small
//!                                   artifact: "wasi:blobstore container CONTAINER\n")
//! wasi:blobstore/CONTAINER/OBJECT   an object (points at its value's artifact)
//! ```
//!
//! A container name never holds `/`, so `wasi:blobstore/CONTAINER/` lists
//! exactly that container's objects, and no object name is a marker.

use super::BlobError;

/// The prefix of every name the app's blobstore keeps in its names.
pub const PREFIX: &str = "wasi:blobstore/";

/// The longest name the core keeps (`names.wit`: 1 to 255 bytes).
const NAME_BYTES: usize = 255;

/// The longest container name: room for the prefix, the `/` and a
/// one-byte object name within a name.
pub const MAX_CONTAINER_NAME: usize = NAME_BYTES - PREFIX.len() - 2;

/// A container name an app gave, checked: 1 to [`MAX_CONTAINER_NAME`]
/// bytes, no `/`, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerName(String);

impl ContainerName {
    /// Checks `name` as a container name.
    pub(crate) fn parse(name: &str) -> Result<Self, BlobError> {
        let why = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > MAX_CONTAINER_NAME {
            Some("it is longer than 238 bytes")
        } else if name.contains('/') {
            Some("it contains '/'")
        } else if name.chars().any(char::is_control) {
            Some("it contains a control character")
        } else {
            None
        };
        match why {
            Some(why) => Err(BlobError::InvalidContainerName {
                name: truncated(name),
                why,
            }),
            None => Ok(Self(name.to_string())),
        }
    }

    /// The name as the app gave it.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the container's marker.
    pub(crate) fn marker(&self) -> String {
        format!("{PREFIX}{}", self.0)
    }

    /// The content of the marker's artifact (a few dozen bytes, charged to
    /// the app like any artifact).
    pub(crate) fn marker_content(&self) -> Vec<u8> {
        format!("wasi:blobstore container {}\n", self.0).into_bytes()
    }

    /// What every one of its objects' names starts with.
    pub(crate) fn objects(&self) -> String {
        format!("{PREFIX}{}/", self.0)
    }

    /// The name of its object `object`, checked: not empty, no control
    /// characters, and the whole name within 255 bytes.
    pub(crate) fn object(&self, object: &str) -> Result<String, BlobError> {
        let name = format!("{}{object}", self.objects());
        let why = if object.is_empty() {
            Some("it is empty")
        } else if name.len() > NAME_BYTES {
            Some("with its container's it is longer than 255 bytes")
        } else if object.chars().any(char::is_control) {
            Some("it contains a control character")
        } else {
            None
        };
        match why {
            Some(why) => Err(BlobError::InvalidObjectName {
                name: truncated(object),
                why,
            }),
            None => Ok(name),
        }
    }

    /// The object name within a name listed under [`objects`](Self::objects).
    pub(crate) fn object_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(&self.objects())
    }
}

/// At most 80 characters of a name, for an error.
fn truncated(name: &str) -> String {
    name.chars().take(80).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn containers_and_objects_map_to_distinct_names() {
        let c = ContainerName::parse("photos").unwrap();
        assert_eq!(c.marker(), "wasi:blobstore/photos");
        assert_eq!(
            c.object("a/b.jpg").unwrap(),
            "wasi:blobstore/photos/a/b.jpg"
        );
        assert_eq!(
            c.object_of("wasi:blobstore/photos/a/b.jpg"),
            Some("a/b.jpg")
        );
        assert!(!c.marker().starts_with(&c.objects()));
        let other = ContainerName::parse("photos2").unwrap();
        assert!(!other.objects().starts_with(&c.objects()));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "a/b", "tab\there"] {
            assert!(ContainerName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ContainerName::parse(&"c".repeat(MAX_CONTAINER_NAME)).is_ok());
        assert!(ContainerName::parse(&"c".repeat(MAX_CONTAINER_NAME + 1)).is_err());
        let longest = ContainerName::parse(&"c".repeat(MAX_CONTAINER_NAME)).unwrap();
        assert_eq!(longest.object("x").unwrap().len(), NAME_BYTES);
        assert!(longest.object("xy").is_err());
        let c = ContainerName::parse("c").unwrap();
        assert!(c.object("").is_err());
        assert!(c.object("nl\n").is_err());
    }
}
