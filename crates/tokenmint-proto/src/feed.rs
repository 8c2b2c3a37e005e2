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
    /// Every token of a credential whose `iat` is before `issued_before` (Unix seconds), and,
    /// when `issued_before_jti` is given, every token issued within that second before the
    /// cut-off (see [`cutoff_covers`]): sent when a credential is deactivated, has all its
    /// tokens revoked, or loses permissions or audiences.
    Credential {
        client_id: String,
        issued_before: i64,
        /// The cut-off within the second `issued_before`: tokens of that second whose `jti`
        /// sorts before this value were issued before the cut-off. Absent in entries written
        /// by servers that did not cut within a second.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_before_jti: Option<String>,
    },
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

/// Length of a tokenmint `jti` that starts with its issue time: [`TIMED_JTI_TIME_LEN`] base62
/// digits of the issue instant in microseconds (so such ids sort by issue time), then random
/// base62 characters.
pub const TIMED_JTI_LEN: usize = 24;
/// Length of the issue-time prefix of a timed `jti`.
pub const TIMED_JTI_TIME_LEN: usize = 10;

/// Whether a `jti` has the timed form, whose prefix tells when within its second it was issued.
pub fn is_timed_jti(jti: &str) -> bool {
    jti.len() == TIMED_JTI_LEN && jti.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether a credential cut-off (`issued_before`, `issued_before_jti`) revokes a token with this
/// `iat` and `jti`.
///
/// `iat` has one-second resolution, so a cut-off in the middle of a second needs more to tell
/// the tokens of that second issued before it from those issued after: tokenmint's `jti`s start
/// with their issue time in microseconds (base62, so byte order is time order), and the
/// cut-off's `issued_before_jti` is the first such prefix after it. A timed `jti` places its
/// token exactly, whatever its `iat`; a token without one is placed by its `iat`, and one of the
/// cut-off's own second counts as issued before it: revoking one too many beats keeping one that
/// should have gone. Without `issued_before_jti` (entries of older servers) only `iat` counts.
pub fn cutoff_covers(
    issued_before: i64,
    issued_before_jti: Option<&str>,
    iat: i64,
    jti: &str,
) -> bool {
    match issued_before_jti {
        Some(boundary) if is_timed_jti(jti) => jti < boundary,
        Some(_) => iat <= issued_before,
        None => iat < issued_before,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "0000000100";

    #[test]
    fn a_timed_id_places_its_token_before_or_after_the_cutoff_exactly() {
        let timed = |prefix: &str| format!("{prefix}abcdefghijklmn");
        assert!(cutoff_covers(100, Some(BOUNDARY), 99, &timed("0000000099")));
        assert!(cutoff_covers(100, Some(BOUNDARY), 100, &timed("00000000zz")));
        assert!(!cutoff_covers(100, Some(BOUNDARY), 100, &timed(BOUNDARY)));
        assert!(!cutoff_covers(100, Some(BOUNDARY), 99, &timed("0000000101")));
        // Without a boundary only iat counts, and the whole second stays valid, as with
        // older servers.
        assert!(cutoff_covers(100, None, 99, &timed("0000000999")));
        assert!(!cutoff_covers(100, None, 100, &timed("0000000000")));
    }

    #[test]
    fn an_id_without_an_issue_time_counts_as_issued_before_the_cutoff_of_its_second() {
        let legacy = "zzzzzzzzzzzzzzzzzzzzzz";
        assert!(!is_timed_jti(legacy));
        assert!(cutoff_covers(100, Some(BOUNDARY), 100, legacy));
        assert!(cutoff_covers(100, Some(BOUNDARY), 99, legacy));
        assert!(!cutoff_covers(100, Some(BOUNDARY), 101, legacy));
    }

    #[test]
    fn entries_without_the_boundary_still_parse_and_serialise_as_before() {
        let old =
            r#"{"cursor":3,"kind":"credential","client_id":"c","issued_before":5,"expires_at":9}"#;
        let e: RevocationEntry = serde_json::from_str(old).unwrap();
        assert_eq!(
            e.revocation,
            Revocation::Credential {
                client_id: "c".into(),
                issued_before: 5,
                issued_before_jti: None
            }
        );
        assert_eq!(serde_json::to_string(&e).unwrap(), old);
    }
}
