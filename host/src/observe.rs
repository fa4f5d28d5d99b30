//! Tracing: what the spans of `#[traced]` (the `artifacts-macros` crate)
//! record once a store operation or app run has returned.
//!
//! Every public store call ([`ArtifactStore`](crate::ArtifactStore),
//! [`AppView`](crate::AppView), [`Names`](crate::Names)) and every app run
//! opens an INFO span named after the operation, with the fields
//! `operation`, `owner`, `hash`, `bytes`, `outcome` (`ok`, or the error's
//! kind such as `not-found`), `duration_us` and, for runs, `exit_code`.
//! Nothing is recorded, timed or formatted unless a subscriber is
//! interested in the span.

use std::fmt::Debug;
use std::time::Instant;

use tracing::Span;

use crate::{GcReport, Hash, Metadata, Tag, Usage};

/// The time a span's work started, if the span is enabled.
#[inline]
pub(crate) fn start(span: &Span) -> Option<Instant> {
    (!span.is_disabled()).then(Instant::now)
}

/// Records what `result` says on `span` (enabled): its outcome, what the
/// value tells, and the time since `start`.
pub(crate) fn finish<T: Observed, E: Debug>(span: &Span, start: Instant, result: &Result<T, E>) {
    match result {
        Ok(value) => {
            span.record("outcome", "ok");
            value.observe(span);
        }
        Err(e) => {
            span.record("outcome", error_kind(e).as_str());
        }
    }
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.record("duration_us", micros);
}

/// An error's kind, as the outcome shows it: its variant in kebab case
/// (`NotFound` is `not-found`), read from its `Debug` form so that every
/// variant (of [`Error`](crate::Error) or another error type) has one
/// without a list to keep up to date.
pub(crate) fn error_kind(e: &impl Debug) -> String {
    let debug = format!("{e:?}");
    let variant = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    let mut kind = String::with_capacity(variant.len() + 4);
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                kind.push('-');
            }
            kind.push(c.to_ascii_lowercase());
        } else {
            kind.push(c);
        }
    }
    kind
}

/// What a successful result adds to its span (a put's hash, a get's size).
pub(crate) trait Observed {
    /// Records the value's fields on `span`; by default nothing.
    fn observe(&self, span: &Span) {
        let _ = span;
    }
}

impl Observed for () {}
impl Observed for bool {}
impl Observed for u64 {}
impl Observed for GcReport {}
impl Observed for crate::HealthReport {}

impl Observed for Hash {
    fn observe(&self, span: &Span) {
        span.record("hash", tracing::field::display(self));
    }
}

impl Observed for Option<Hash> {}
impl Observed for Vec<Hash> {}
impl Observed for crate::Sha256Digest {}

impl Observed for crate::Download {
    fn observe(&self, span: &Span) {
        span.record("bytes", self.size());
    }
}

impl Observed for Vec<u8> {
    fn observe(&self, span: &Span) {
        span.record("bytes", self.len() as u64);
    }
}

impl Observed for Metadata {
    fn observe(&self, span: &Span) {
        span.record("bytes", self.size);
    }
}

impl Observed for Vec<Metadata> {}
impl Observed for Vec<Tag> {}
impl Observed for Usage {}

#[cfg(feature = "apps")]
impl Observed for crate::apps::AppOutcome {
    fn observe(&self, span: &Span) {
        span.record("exit_code", i64::from(self.exit_code));
    }
}

#[cfg(feature = "apps")]
impl Observed for crate::apps::App {
    fn observe(&self, span: &Span) {
        span.record("hash", tracing::field::display(self.hash()));
    }
}
