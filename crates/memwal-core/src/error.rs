//! One error type for the whole core, with a stable machine-readable code.
//!
//! The code set is part of the public contract (SPEC §4): the Node binding
//! forwards it verbatim as `MemWalError.code`.

use std::fmt;

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

/// A core error: a code, a human message, and the shard it concerns when known.
///
/// Cloneable on purpose: one failed WAL append must be reported to every
/// put that was waiting on it, and a poisoned writer repeats its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
    shard_id: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Credentials in any URL the message names (an endpoint's
    /// `user:password@`, as object_store repeats it) are redacted here, so
    /// no error can carry them.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: redact_owned(message.into()),
            shard_id: None,
        }
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<arrow_schema::ArrowError> for Error {
    fn from(err: arrow_schema::ArrowError) -> Self {
        Error::invalid_input(format!("Arrow error: {err}"))
    }
}

impl From<object_store::Error> for Error {
    fn from(err: object_store::Error) -> Self {
        match err {
            object_store::Error::NotFound { path, .. } => {
                Error::not_found(format!("Object not found: {path}"))
            }
            other => Error::io(format!("Object store error: {other}")),
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(err: tokio::task::JoinError) -> Self {
        Error::internal(format!("Background task failed: {err}"))
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
}
