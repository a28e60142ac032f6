//! The one place where errors become `tonic::Status`.
//!
//! Database text never reaches a client: internal errors are logged here with
//! their detail and answered with a generic message.

use tonic::Status;

use crate::store::StoreError;

/// Maps a store error to the status a client can act on.
pub fn from_store(err: StoreError) -> Status {
    match err {
        StoreError::Unavailable(source) => {
            tracing::warn!(error = %source, "database unavailable");
            Status::unavailable("the database is unavailable; retry later")
        }
        StoreError::Busy(what) => {
            tracing::warn!(what, "every request connection busy");
            let delay = std::time::Duration::from_millis(200);
            use tonic_types::{ErrorDetails, StatusExt};
            Status::with_error_details(
                tonic::Code::ResourceExhausted,
                format!(
                    "the server is busy with too many concurrent queries; retry in {} ms",
                    delay.as_millis()
                ),
                ErrorDetails::with_retry_info(Some(delay)),
            )
        }
        StoreError::Conflict(what) => Status::already_exists(format!("{what} already exists")),
        StoreError::NotFound(what) => Status::not_found(format!("{what} not found")),
        StoreError::State(why) => Status::failed_precondition(why),
        StoreError::Invalid(what) => Status::invalid_argument(format!("invalid {what}")),
        err @ (StoreError::Other(_) | StoreError::Migrate(_) | StoreError::Corrupt(_)) => {
            tracing::error!(error = %err, "internal error");
            Status::internal("internal error")
        }
    }
}

/// A precise `INVALID_ARGUMENT` naming the field at fault.
pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {problem}"))
}

/// Checks a string of a request that reaches SQL: at most `max` bytes and no
/// NUL (PostgreSQL text cannot hold one, and would answer an internal error).
pub fn checked_text(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.len() > max {
        return Err(invalid(
            field,
            format!("{} bytes, at most {max}", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(invalid(field, "contains a NUL character"));
    }
    Ok(())
}
