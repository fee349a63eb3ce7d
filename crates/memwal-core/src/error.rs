//! One error type for the whole core, with a stable machine-readable code.
//!
//! The code set is part of the public API (README, "Errors"; the on-disk
//! format, docs/FORMAT.md, has no error codes): the Node binding forwards it
//! as the `code` property of the JS error.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// Stable classification of every failure the core can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidInput,
    InvalidConfig,
    SchemaMismatch,
    Fenced,
    WalOnlyMode,
    Closed,
    Io,
    Corrupt,
    NotFound,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::SchemaMismatch => "SCHEMA_MISMATCH",
            ErrorCode::Fenced => "FENCED",
            ErrorCode::WalOnlyMode => "WAL_ONLY_MODE",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::Io => "IO",
            ErrorCode::Corrupt => "CORRUPT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A core error: a code, a human message, the shard it concerns when
/// known, and the error that caused it, if any.
///
/// Cloneable on purpose: one failed WAL append must be reported to every
/// put that was waiting on it, and a poisoned writer repeats its cause. The
/// cause is therefore shared ([`Arc`]) rather than boxed.
///
/// The message already carries the cause's text (JS sees only the
/// message); [`source`](StdError::source) is for Rust callers that walk or
/// downcast the chain.
#[derive(Debug, Clone, thiserror::Error)]
#[error("[{code}] {message}")]
pub struct Error {
    code: ErrorCode,
    message: String,
    shard_id: Option<String>,
    #[source]
    source: Option<Cause>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Two errors are equal when they read the same: code, message and shard
/// (causes aside, since most error types cannot be compared).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        (self.code, &self.message, &self.shard_id) == (other.code, &other.message, &other.shard_id)
    }
}

impl Eq for Error {}

/// One link of an error's cause chain as it is shown: the link's text with
/// credentials redacted, and the next link. Built once, when the cause is
/// attached, because `source()` can only hand out references to stored
/// values; the first link also keeps the original error for downcasting.
#[derive(Clone)]
pub struct Cause {
    text: String,
    next: Option<Box<Cause>>,
    original: Option<Arc<dyn StdError + Send + Sync>>,
}

impl Cause {
    fn new(original: Arc<dyn StdError + Send + Sync>) -> Self {
        let mut links = Vec::new();
        let mut current: Option<&(dyn StdError + 'static)> = Some(original.as_ref());
        while let Some(link) = current {
            links.push(redact_owned(link.to_string()));
            current = link.source();
        }
        let mut chain = None;
        for text in links.into_iter().rev() {
            chain = Some(Box::new(Cause {
                text,
                next: chain,
                original: None,
            }));
        }
        let mut first = *chain.expect("a cause chain has at least its first link");
        first.original = Some(original);
        first
    }

    /// The error as it was attached (the first link only), to downcast.
    pub fn original(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.original.as_deref()
    }
}

/// Shows the redacted links only: the original error's own `Debug` would
/// print the credentials the text had removed (an `unwrap()` panics with it).
impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cause")
            .field("text", &self.text)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.next
            .as_deref()
            .map(|next| next as &(dyn StdError + 'static))
    }
}

impl Error {
    /// Credentials in any URL the message names (an endpoint's
    /// `user:password@`, as object_store repeats it) are redacted here, so
    /// no error can carry them.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: redact_owned(message.into()),
            shard_id: None,
            source: None,
        }
    }

    /// An error caused by `source`: the message is `what: <source>`.
    pub fn caused_by(
        code: ErrorCode,
        what: impl fmt::Display,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::new(code, format!("{what}: {source}")).with_source(source)
    }

    /// Attach the error that caused this one (its text is redacted in the
    /// chain as in messages); replaces an earlier cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Cause::new(Arc::new(source)));
        self
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidConfig, message)
    }

    pub fn schema_mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::SchemaMismatch, message)
    }

    pub fn fenced(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Fenced, message)
    }

    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Io, message)
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Corrupt, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn closed() -> Self {
        Self::new(ErrorCode::Closed, "Shard writer is closed")
    }

    pub fn wal_only_mode(what: &str) -> Self {
        Self::new(
            ErrorCode::WalOnlyMode,
            format!(
                "{what} is not available: the writer runs in WAL-only mode (enableMemtable: false)"
            ),
        )
    }

    /// Attach the shard id unless one is already set.
    pub fn with_shard(mut self, shard_id: impl fmt::Display) -> Self {
        if self.shard_id.is_none() {
            self.shard_id = Some(shard_id.to_string());
        }
        self
    }

    /// Prefix the message with context, keeping code and shard.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = redact_owned(format!("{what}: {}", self.message));
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn shard_id(&self) -> Option<&str> {
        self.shard_id.as_deref()
    }
}

fn redact_owned(message: String) -> String {
    match crate::redact::redact_userinfo(&message) {
        std::borrow::Cow::Borrowed(_) => message,
        std::borrow::Cow::Owned(clean) => clean,
    }
}

/// An Arrow failure reached through `?` is our own data failing (encoding,
/// concatenating, filtering batches the core built): INTERNAL. Failures
/// caused by the caller's input are mapped where the input is checked
/// (INVALID_INPUT or SCHEMA_MISMATCH), never through this impl.
impl From<arrow_schema::ArrowError> for Error {
    fn from(err: arrow_schema::ArrowError) -> Self {
        Error::caused_by(ErrorCode::Internal, "Arrow error", err)
    }
}

impl From<object_store::Error> for Error {
    fn from(err: object_store::Error) -> Self {
        match &err {
            object_store::Error::NotFound { path, .. } => {
                let message = format!("Object not found: {path}");
                Error::not_found(message).with_source(err)
            }
            _ => Error::caused_by(ErrorCode::Io, "Object store error", err),
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(err: tokio::task::JoinError) -> Self {
        Error::caused_by(ErrorCode::Internal, "Background task failed", err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leads_with_the_code() {
        let err = Error::fenced("Writer fenced: local epoch 1 < stored epoch 2 for shard s");
        assert_eq!(
            err.to_string(),
            "[FENCED] Writer fenced: local epoch 1 < stored epoch 2 for shard s"
        );
    }

    #[test]
    fn with_shard_keeps_the_first_shard() {
        let err = Error::io("boom").with_shard("a").with_shard("b");
        assert_eq!(err.shard_id(), Some("a"));
    }

    #[test]
    fn credentials_in_a_url_never_reach_an_error_message() {
        let store_error = object_store::Error::Generic {
            store: "S3",
            source: "Error performing HEAD http://AKIA:SECRET@127.0.0.1:9/b/k in 1ms".into(),
        };
        let err = Error::from(store_error).context("Head http://AKIA:SECRET@127.0.0.1:9/b/k");
        assert!(!err.message().contains("SECRET"), "{err}");
        assert!(!err.message().contains("AKIA"), "{err}");
        assert!(
            err.message().contains("http://<redacted>@127.0.0.1:9/b/k"),
            "{err}"
        );
        assert!(!err.to_string().contains("SECRET"));
    }

    #[test]
    fn object_store_not_found_maps_to_not_found() {
        let err: Error = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        }
        .into();
        assert_eq!(err.code(), ErrorCode::NotFound);
    }

    #[test]
    fn arrow_errors_reached_through_question_mark_are_internal_and_keep_their_source() {
        fn concat_ours() -> Result<()> {
            let a = arrow_array::Int32Array::from(vec![1]);
            let b = arrow_array::StringArray::from(vec!["x"]);
            arrow_select::concat::concat(&[&a, &b])?;
            Ok(())
        }
        let err = concat_ours().unwrap_err();
        assert_eq!(err.code(), ErrorCode::Internal, "{err}");
        let source = StdError::source(&err).expect("the Arrow error is the source");
        assert!(err.message().ends_with(&source.to_string()), "{err}");
        let original = err.source.as_ref().and_then(Cause::original).unwrap();
        assert!(original
            .downcast_ref::<arrow_schema::ArrowError>()
            .is_some());
    }

    #[test]
    fn a_filter_literal_arrow_cannot_convert_is_the_callers_invalid_input() {
        let schema = arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "n",
            arrow_schema::DataType::Int32,
            true,
        )]);
        let err = crate::read::filter::Filter::parse("n = 'seven'", &schema).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    }

    /// Shows the URL with its credentials in both `Display` and `Debug`,
    /// as object_store's errors do.
    struct Leaky(Option<Box<Leaky>>);

    impl fmt::Debug for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Leaky(http://AKIA:SECRET@127.0.0.1:9/b/k, {:?})", self.0)
        }
    }

    impl fmt::Display for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "GET http://AKIA:SECRET@127.0.0.1:9/b/k failed")
        }
    }

    impl StdError for Leaky {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.0.as_deref().map(|l| l as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn every_link_of_the_source_chain_is_redacted_and_clones_keep_it() {
        let err = Error::caused_by(ErrorCode::Io, "Read", Leaky(Some(Box::new(Leaky(None)))));
        let err = err.clone();
        let mut links = Vec::new();
        let mut current: Option<&(dyn StdError + 'static)> = Some(&err);
        while let Some(link) = current {
            links.push(link.to_string());
            current = link.source();
        }
        assert_eq!(links.len(), 3, "{links:?}");
        for link in &links {
            assert!(!link.contains("SECRET") && !link.contains("AKIA"), "{link}");
        }
        assert!(links[2].contains("http://<redacted>@127.0.0.1:9/b/k"));
    }

    #[test]
    fn debug_output_of_an_error_with_a_cause_carries_no_credentials() {
        let err = Error::caused_by(ErrorCode::Io, "Read", Leaky(Some(Box::new(Leaky(None)))));
        let debug = format!("{err:?} {:#?}", err.clone());
        assert!(
            !debug.contains("SECRET") && !debug.contains("AKIA"),
            "{debug}"
        );
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
