//! Bounds of the admin API: what the server refuses beyond them (422) and what its OpenAPI
//! document states (`maximum`, `maxLength`, `pattern`, ...).
//!
//! Both read these constants, so the document cannot promise a bound the server does not
//! enforce, nor the server enforce one the document does not state. The domain crate's
//! constants of the same meaning are these.

/// An organization slug: 1 to this many lower-case letters, digits and `-`, starting with a
/// letter or digit.
pub const SLUG_MAX_LEN: usize = 63;
/// A display name (of a credential or an organization), in characters as given.
pub const NAME_MAX_LEN: usize = 200;
/// Largest admin-API request body, in bytes (413 beyond).
pub const ADMIN_BODY_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Audiences one credential may list.
pub const AUDIENCES_MAX: usize = 20;
/// One audience, in bytes.
pub const AUDIENCE_MAX_LEN: usize = 512;
/// Public keys one credential may hold.
pub const PUBLIC_KEYS_MAX: usize = 10;
/// A portal user's email address, in characters as given.
pub const EMAIL_MAX_LEN: usize = 254;
/// A portal user's password, in characters.
pub const PASSWORD_MIN_LEN: usize = 12;
/// A portal user's password, in characters.
pub const PASSWORD_MAX_LEN: usize = 256;
/// Shortest token lifetime a credential may be given, in seconds (the longest is the server's
/// `--max-token-lifetime`).
pub const TOKEN_LIFETIME_MIN_SECS: u32 = 60;
/// Longest expiry or rotation overlap, in seconds: ten years of 366 days.
pub const DURATION_MAX_SECS: u64 = 10 * 366 * 86_400;
/// Highest per-credential token-request limit, per minute.
pub const RATE_LIMIT_MAX_PER_MINUTE: u32 = 1_000_000;
/// Longest a new signing key may be published before it signs, in seconds: 30 days.
pub const KEY_PROPAGATION_MAX_SECS: u64 = 30 * 86_400;

/// A page size of a list: the default when none is asked for and the largest one served. A
/// larger one is refused, not cut down, so a client never mistakes a short page for the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize {
    pub default: u32,
    pub max: u32,
}

/// `GET /admin/v1/audit`.
pub const AUDIT_PAGE: PageSize = PageSize { default: 100, max: 1000 };
/// `GET /admin/v1/credentials`.
pub const CREDENTIALS_PAGE: PageSize = PageSize { default: 100, max: 500 };
/// `GET /admin/v1/organizations`.
pub const ORGANIZATIONS_PAGE: PageSize = PageSize { default: 100, max: 500 };
/// `GET /admin/v1/revocations` and `/revocations/stream`.
pub const REVOCATIONS_PAGE: PageSize = PageSize { default: 1000, max: 10_000 };
/// Days of history of `GET /admin/v1/credentials/{client_id}/activity`.
pub const ACTIVITY_DAYS: PageSize = PageSize { default: 14, max: 90 };

/// Characters Rust's `str::trim` removes (Unicode `White_Space`), as a regular-expression
/// character-class body that both ECMA-262 and Python read alike. The server trims names,
/// slugs and email addresses, so a value is judged by what is left.
pub const WHITESPACE_CLASS: &str =
    r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters (Unicode `Cc`, what `char::is_control` matches), as a class body.
pub const CONTROL_CLASS: &str = r"\x00-\x1f\x7f-\x9f";
/// The characters besides [`CONTROL_CLASS`] that a stored name, email address or audience may
/// not hold, as a class body: Unicode line and paragraph separators and format characters
/// (`Cf`: bidirectional controls, zero-width characters, the byte order mark, the soft
/// hyphen...) and the rest of Unicode's `Default_Ignorable_Code_Point` set (the combining
/// grapheme joiner, Hangul fillers, variation selectors...), none of which shows as itself (`tokenmint_core::ids::is_hidden_char`). The few
/// format characters beyond U+FFFF are refused too, but not written here: ECMA-262 and Python
/// do not read an escape beyond four hex digits alike.
pub const HIDDEN_CLASS: &str = r"\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb";
