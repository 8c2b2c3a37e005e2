//! Request extraction: client authentication for the OAuth endpoints, Bearer authentication for
//! the admin API, and JSON/query extractors whose rejections are problem+json.

pub mod bearer;
pub mod client_auth;
pub mod json;

pub use bearer::{Caller, authenticate_bearer};
pub use client_auth::{AuthenticatedClient, authenticate_client, read_params};
pub use json::{JsonBody, QueryParams};
