//! The one place where errors become `tonic::Status`.
//!
//! Database text never reaches a client: internal errors are logged here with
//! their detail and answered with a generic message.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    auth::AuthError,
    incidents::feed::FeedError,
    ingest::{
        WriteError,
        admit::{AckError, Refused},
        limits::ThrottleCause,
    },
    store::StoreError,
};

/// A retryable RESOURCE_EXHAUSTED carrying its delay as `google.rpc.RetryInfo`.
pub fn retry_in(message: String, delay: Duration) -> Status {
    Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(delay)),
    )
}

/// The domain of the `google.rpc.ErrorInfo` this server attaches.
pub const ERROR_DOMAIN: &str = "pulsyon.dev";

/// As [`retry_in`], with a `google.rpc.ErrorInfo` whose reason names the
/// limit that refused (`THROTTLE_CAUSE_*` of the contract without its
/// prefix, e.g. `DATABASE_BUSY`), so a client can tell causes apart without
/// reading the message.
pub fn refused_by(cause: ThrottleCause, message: String, delay: Duration) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(delay));
    details.set_error_info(
        cause.as_str().to_ascii_uppercase(),
        ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// A query past its tenant's concurrent bound: RESOURCE_EXHAUSTED with RetryInfo.
pub fn from_busy(busy: crate::query::gate::Busy) -> Status {
    retry_in(
        format!("{busy}; retry in {} ms", busy.retry_after.as_millis()),
        busy.retry_after,
    )
}

/// Maps a refused caller: UNAUTHENTICATED for the key, PERMISSION_DENIED
/// for its scope.
pub fn from_auth(err: AuthError) -> Status {
    match err {
        AuthError::MissingScope(_) => Status::permission_denied(err.to_string()),
        AuthError::Store(err) => from_store(err),
        AuthError::Missing
        | AuthError::Malformed(_)
        | AuthError::UnknownKey
        | AuthError::Revoked => Status::unauthenticated(err.to_string()),
    }
}

/// Maps the ingest pipeline's refusal of a batch.
pub fn from_refused(refused: Refused) -> Status {
    match refused {
        Refused::Invalid { field, message } => invalid(field, message),
        Refused::Throttled {
            cause,
            retry_after,
            message,
        } => refused_by(
            cause,
            format!(
                "{message}; retry in {} ms (resend unacknowledged batches)",
                retry_after.as_millis()
            ),
            retry_after,
        ),
        Refused::Overloaded(delay) => refused_by(
            ThrottleCause::Overload,
            format!(
                "the server is overloaded; retry in {} ms (resend unacknowledged batches)",
                delay.as_millis()
            ),
            delay,
        ),
        Refused::ShuttingDown => ingest_shutting_down(),
        Refused::Unavailable(delay) => Status::with_error_details(
            Code::Unavailable,
            format!(
                "the ingest buffer is unavailable; retry in {} ms (resend unacknowledged batches)",
                delay.as_millis()
            ),
            ErrorDetails::with_retry_info(Some(delay)),
        ),
        Refused::Store(err) => from_store(err),
    }
}

/// Maps why a Watch cannot start or goes no further.
pub fn from_feed(err: FeedError<Status>) -> Status {
    match err {
        FeedError::Resync { after } => Status::failed_precondition(format!(
            "resync required: the updates after {after} are no longer kept; \
             list the open incidents and watch from now"
        )),
        FeedError::ResyncFuture { resume, newest } => Status::failed_precondition(format!(
            "resync required: sequence {resume} is past the newest update ({newest}), \
             so it is not one this server sent; list the open incidents and watch from now"
        )),
        FeedError::ShuttingDown => Status::unavailable(
            "the server is shutting down; resume after the last sequence received",
        ),
        FeedError::Ended(status) => status,
        FeedError::Store(err) => from_store(err),
    }
}

/// An ingest stream ended because the server is shutting down.
pub fn ingest_shutting_down() -> Status {
    Status::unavailable("the server is shutting down; reconnect and resend unacknowledged batches")
}

/// An ingest stream ended after `idle` without a batch.
pub fn ingest_idle(idle: Duration) -> Status {
    Status::unavailable(format!(
        "no batch for {} s: the stream is closed to free its slot; open a new one when there is more to send",
        idle.as_secs()
    ))
}

/// Maps the failure of an admitted batch's write.
pub fn from_ack_error(err: AckError) -> Status {
    match err {
        AckError::Write(WriteError::Unavailable) => {
            Status::unavailable("the database is unavailable; resend unacknowledged batches later")
        }
        AckError::Write(WriteError::Internal) => Status::internal("the batch could not be stored"),
        AckError::Write(WriteError::Fenced) => {
            Status::unavailable("the batch's writer changed; resend unacknowledged batches")
        }
        AckError::WriterStopped => Status::unavailable("the writer stopped; resend"),
    }
}

/// Maps a store error to the status a client can act on.
pub fn from_store(err: StoreError) -> Status {
    match err {
        StoreError::Unavailable(source) => {
            tracing::warn!(error = %source, "database unavailable");
            Status::unavailable("the database is unavailable; retry later")
        }
        StoreError::Busy(what) => {
            tracing::warn!(what, "every database connection busy");
            let delay = Duration::from_millis(200);
            refused_by(
                ThrottleCause::DatabaseBusy,
                format!(
                    "database busy: no connection was free to read {what}; retry in {} ms",
                    delay.as_millis()
                ),
                delay,
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

/// A message the codec refuses: too large, or not protobuf.
pub fn malformed_message(problem: impl std::fmt::Display) -> Status {
    Status::invalid_argument(problem.to_string())
}

/// A method the service does not have.
pub fn no_such_method(method: &str, service: &str) -> Status {
    Status::unimplemented(format!("{method} is not a method of {service}"))
}

/// A failure that is a bug or a broken environment: logged with its
/// detail here, answered INTERNAL with a generic message.
pub fn internal(what: &str, detail: impl std::fmt::Display) -> Status {
    tracing::error!(error = %detail, what, "internal error");
    Status::internal("internal error")
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
