//! The revocation feed: how a stateless JWT stops being accepted before it expires.
//!
//! The server appends an entry whenever a token is revoked, a credential is deactivated or has
//! all its tokens revoked, or a signing key is withdrawn. Verifiers follow the feed, either as a
//! server-sent-events stream (`GET {feed}/stream`, resumable with `Last-Event-ID` or `?after=`)
//! or by polling (`GET {feed}?after=CURSOR`), and apply each entry until its `expires_at`: by
//! then every token it covers has expired on its own. Cursors only grow.

use serde::{Deserialize, Serialize};

/// What a feed entry revokes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// One token, by its `jti`.
    Token { jti: String },
    /// Every token of a credential whose `iat` is before `issued_before` (Unix seconds): sent
    /// when a credential is deactivated or when an admin revokes all its tokens.
    Credential { client_id: String, issued_before: i64 },
    /// Every token signed by this key: the key was withdrawn.
    Key { kid: String },
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationEntry {
    /// Position in the feed; resume after it.
    pub cursor: i64,
    #[serde(flatten)]
    pub revocation: Revocation,
    /// Unix seconds after which no token the entry covers can still be valid; drop it then.
    pub expires_at: i64,
}

/// A page of the polled feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationPage {
    pub entries: Vec<RevocationEntry>,
    /// Pass as `after` to get what follows; equal to the request's `after` when nothing is new.
    pub next_cursor: i64,
}

/// The SSE event name of a feed entry; its `id` is the cursor and its `data` a [`RevocationEntry`].
pub const SSE_EVENT: &str = "revocation";

/// One server-sent event of the streamed feed, field by field as the event stream carries it
/// (WHATWG HTML §9.2). The OpenAPI document describes the stream with this type, so that each
/// event, not the stream as one string, is what a client can check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationEvent {
    /// Always [`SSE_EVENT`].
    pub event: String,
    /// The entry's cursor; a reconnecting client sends the last one as `Last-Event-ID`.
    pub id: String,
    /// The [`RevocationEntry`] as JSON.
    pub data: String,
}
