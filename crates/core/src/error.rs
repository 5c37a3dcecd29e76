//! The error kinds that every crate shares.

use std::collections::BTreeMap;

/// Validation messages by field name.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Errors common to every domain crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// One or more fields failed validation.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// The database did not respond (pool timeout, connection refused, read-only).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error; the message is for the log only.
    #[error("database error: {0}")]
    Database(String),
}

impl CoreError {
    /// Creates an [`CoreError::Invalid`] with one message on one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), vec![message.into()]);
        Self::Invalid(fields)
    }
}

#[cfg(feature = "database")]
impl From<diesel::result::Error> for CoreError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => Self::NotFound("object"),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            // PostgreSQL rejects NUL in text; SQLite stores it. Either way it is bad input.
            Error::DatabaseError(_, info) if info.message().contains("0x00") => {
                Self::invalid("non_field_errors", "Text must not contain NUL characters.")
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if is_unavailable_message(info.message()) =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Database(other.to_string()),
        }
    }
}

#[cfg(feature = "database")]
impl From<r2d2::Error> for CoreError {
    fn from(error: r2d2::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// Returns true for driver messages that mean the database cannot serve requests now
/// rather than that the query was wrong.
#[cfg(feature = "database")]
fn is_unavailable_message(message: &str) -> bool {
    const MARKERS: [&str; 6] = [
        "database is locked",
        "readonly database",
        "read-only",
        "terminating connection",
        "server closed the connection",
        "disk I/O error",
    ];
    MARKERS.iter().any(|marker| message.contains(marker))
}
