//! What a service operation can fail with, said in the domain's terms.
//!
//! The service layer ([`crate::service`], [`crate::users`]) is called by the admin API, the
//! portal and start-up, and it knows none of them: no status code, no problem body, no page.
//! An operation says what went wrong (a thing not found, which input is wrong and why, a
//! conflict, a refusal of the policy and what would be needed, a dependency down, a fault) and
//! each caller decides how to answer it. For HTTP that decision is made in one place,
//! `impl From<ServiceError> for ApiError` in [`crate::error`], so the admin API and the portal
//! cannot answer one failure two ways; a portal page that shows a field's message next to
//! the field matches on [`ServiceError::Invalid`] before that.

use super::policy::{Denied, Needs};
use std::borrow::Cow;
use tokenmint_store::StoreError;

/// Why a service operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The target does not exist, or the actor may not learn that it does (another
    /// organization's object): the kind of thing, e.g. `credential`.
    #[error("{0} not found")]
    NotFound(Cow<'static, str>),
    /// An input is refused: which one (its name in the admin API's request) and what is wrong
    /// with it, in words for the person who gave it.
    #[error("{message}")]
    Invalid { field: Cow<'static, str>, message: String },
    /// The request conflicts with the state it met: a concurrent change, a guard's refusal at
    /// commit time, a change that would lock the actor out.
    #[error("{0}")]
    Conflict(String),
    /// The policy refused the actor: why, and what would be needed.
    #[error("{reason}")]
    Denied { reason: &'static str, needs: Needs },
    /// A dependency (the database) cannot be reached; retrying shortly may work. The message
    /// says so to a person and holds nothing internal.
    #[error("{0}")]
    Unavailable(String),
    /// A fault the caller cannot fix; the detail is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    pub fn not_found(what: impl Into<Cow<'static, str>>) -> Self {
        Self::NotFound(what.into())
    }

    /// A refusal of the policy; `what` names the target's kind for "not found".
    pub fn denied(d: Denied, what: &'static str) -> Self {
        match d {
            Denied::NotFound => Self::not_found(what),
            Denied::Forbidden { reason, needs } => Self::Denied { reason, needs },
            Denied::Conflict { reason } => Self::Conflict(reason.into()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(Cow::Borrowed(what)),
            StoreError::Conflict(msg) => Self::Conflict(msg),
            // Invalid input like any other query parameter, as the audit listing's cursor and
            // the search's page link are.
            StoreError::InvalidCursor => {
                Self::invalid("cursor", StoreError::InvalidCursor.to_string())
            }
            // A guard's refusal says what happened and what to do; it is a conflict with the
            // state the request met at commit time.
            StoreError::Refused(why) => Self::Conflict(why.to_string()),
            StoreError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "database unavailable");
                Self::Unavailable(
                    "the database is unavailable right now, so this request cannot be served; \
                     retry shortly"
                        .into(),
                )
            }
            other => Self::Internal(other.to_string()),
        }
    }
}
