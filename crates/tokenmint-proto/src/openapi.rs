//! Schemas of admin-API fields whose bounds come from [`crate::limits`]: built here from the
//! constants the server validates with (utoipa's `max_length = …` attributes take literals
//! only, which would be a second copy of each number).

use crate::limits::{self, CONTROL_CLASS, HIDDEN_CLASS, PageSize, WHITESPACE_CLASS};
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Array, Object};

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description))
}

fn nullable(b: ObjectBuilder, ty: Type) -> ObjectBuilder {
    b.schema_type(SchemaType::from_iter([ty, Type::Null]))
}

fn integer(format: KnownFormat, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(format)))
        .description(Some(description))
}

/// A page size (or a number of days) of a list: 1 to its maximum.
pub fn page_size(size: PageSize, what: &str) -> Object {
    integer(
        KnownFormat::Int32,
        &format!("{what}, 1 to {} (default {}); a larger one is refused", size.max, size.default),
    )
    .minimum(Some(1))
    .maximum(Some(size.max))
    .build()
}

/// An organization slug, as the server reads it: surrounding white space is trimmed.
pub fn slug_pattern() -> String {
    format!(
        "^[{WHITESPACE_CLASS}]*[a-z0-9][a-z0-9-]{{0,{}}}[{WHITESPACE_CLASS}]*$",
        limits::SLUG_MAX_LEN - 1
    )
}

pub fn slug() -> Object {
    string(&format!(
        "An organization slug: 1 to {} lower-case letters, digits and `-`, starting with a \
         letter or digit (surrounding white space is ignored).",
        limits::SLUG_MAX_LEN
    ))
    .pattern(Some(slug_pattern()))
    .build()
}

/// A display name: at most [`limits::NAME_MAX_LEN`] characters as given, no control
/// characters, and something other than white space (it is trimmed).
pub fn name_pattern() -> String {
    let not = format!("{CONTROL_CLASS}{HIDDEN_CLASS}");
    format!("^[^{not}]*[^{not}{WHITESPACE_CLASS}][^{not}]*$")
}

fn name_builder() -> ObjectBuilder {
    string(&format!(
        "Display name: 1 to {} characters without control, line-separator or invisible format \
         characters (bidirectional controls, zero-width characters), not only white space \
         (which is trimmed).",
        limits::NAME_MAX_LEN
    ))
    .min_length(Some(1))
    .max_length(Some(limits::NAME_MAX_LEN))
    .pattern(Some(name_pattern()))
}

pub fn name() -> Object {
    name_builder().build()
}

/// An optional name (absent or null: unchanged, or the default).
pub fn optional_name() -> Object {
    nullable(name_builder(), Type::String).build()
}

/// One audience: no spaces or control characters once the surrounding white space is trimmed,
/// and something left.
pub fn audience_pattern() -> String {
    let edge = format!("[^ {CONTROL_CLASS}{HIDDEN_CLASS}{WHITESPACE_CLASS}]");
    let inner = format!("[^ {CONTROL_CLASS}{HIDDEN_CLASS}]");
    format!("^[{WHITESPACE_CLASS}]*{edge}(?:{inner}*{edge})?[{WHITESPACE_CLASS}]*$")
}

fn audiences_builder() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(
            string(&format!(
                "An audience: 1 to {} characters without spaces, control, line-separator or \
                 invisible format characters (bidirectional controls, zero-width characters).",
                limits::AUDIENCE_MAX_LEN
            ))
            .pattern(Some(audience_pattern()))
            .max_length(Some(limits::AUDIENCE_MAX_LEN))
            .build(),
        )
        .max_items(Some(limits::AUDIENCES_MAX))
        .description(Some(format!(
            "At most {} audiences; a token request may ask for one of them, the first is used \
             when none is asked for.",
            limits::AUDIENCES_MAX
        )))
}

pub fn audiences() -> Array {
    audiences_builder().build()
}

pub fn optional_audiences() -> Array {
    audiences_builder().schema_type(SchemaType::from_iter([Type::Array, Type::Null])).build()
}

fn public_keys_builder(min: usize) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(string("A PEM public key, a JWK or a JWK Set, as text. Private keys are refused."))
        .min_items(Some(min))
        .max_items(Some(limits::PUBLIC_KEYS_MAX))
        .description(Some(format!(
            "Public keys for `private_key_jwt` client authentication (RFC 7523): a credential \
             holds at most {}.",
            limits::PUBLIC_KEYS_MAX
        )))
}

/// The keys of `POST …/public-keys`: at least one.
pub fn public_keys() -> Array {
    public_keys_builder(1).build()
}

/// The keys of a new credential: none or more.
pub fn optional_public_keys() -> Array {
    public_keys_builder(0).schema_type(SchemaType::from_iter([Type::Array, Type::Null])).build()
}

/// An email address as the portal reads it: one `@` with something on each side, no white
/// space, control or invisible format characters or angle brackets, at most [`limits::EMAIL_MAX_LEN`]
/// characters once trimmed.
pub fn email_pattern() -> String {
    let part = format!("[^@<>{CONTROL_CLASS}{HIDDEN_CLASS}{WHITESPACE_CLASS}]");
    format!("^[{WHITESPACE_CLASS}]*{part}+@{part}+[{WHITESPACE_CLASS}]*$")
}

pub fn email() -> Object {
    string(&format!("An email address, at most {} characters.", limits::EMAIL_MAX_LEN))
        .pattern(Some(email_pattern()))
        .max_length(Some(limits::EMAIL_MAX_LEN))
        .build()
}

pub fn password() -> Object {
    string(&format!("{} to {} characters.", limits::PASSWORD_MIN_LEN, limits::PASSWORD_MAX_LEN))
        .min_length(Some(limits::PASSWORD_MIN_LEN))
        .max_length(Some(limits::PASSWORD_MAX_LEN))
        .build()
}

/// Seconds until expiry: 1 to [`limits::DURATION_MAX_SECS`]; absent or null: none.
pub fn expires_in_seconds() -> Object {
    nullable(
        integer(
            KnownFormat::Int64,
            &format!("Seconds until the credential expires, 1 to {}.", limits::DURATION_MAX_SECS),
        ),
        Type::Integer,
    )
    .minimum(Some(1))
    .maximum(Some(limits::DURATION_MAX_SECS))
    .build()
}

pub fn overlap_seconds() -> Object {
    nullable(
        integer(
            KnownFormat::Int64,
            &format!(
                "How long the existing secrets keep working, 0 to {} seconds; default 86400 \
                 (24 h); 0 ends them at once.",
                limits::DURATION_MAX_SECS
            ),
        ),
        Type::Integer,
    )
    .minimum(Some(0))
    .maximum(Some(limits::DURATION_MAX_SECS))
    .build()
}

pub fn rate_limit_per_minute() -> Object {
    nullable(
        integer(
            KnownFormat::Int32,
            &format!(
                "Token requests per minute, 0 to {}; 0 turns the limit off for this credential; \
                 null or absent: the server's default.",
                limits::RATE_LIMIT_MAX_PER_MINUTE
            ),
        ),
        Type::Integer,
    )
    .minimum(Some(0))
    .maximum(Some(limits::RATE_LIMIT_MAX_PER_MINUTE))
    .build()
}

pub fn propagation_seconds() -> Object {
    nullable(
        integer(
            KnownFormat::Int64,
            &format!(
                "Seconds the new key is published before it signs, 0 to {}; default: the \
                 server's propagation delay. 0 makes it sign at once (verifiers with a cached \
                 JWKS refetch on the unknown kid).",
                limits::KEY_PROPAGATION_MAX_SECS
            ),
        ),
        Type::Integer,
    )
    .minimum(Some(0))
    .maximum(Some(limits::KEY_PROPAGATION_MAX_SECS))
    .build()
}

/// Token lifetime: from [`limits::TOKEN_LIFETIME_MIN_SECS`]; the server states its maximum
/// (its `--max-token-lifetime`) when it serves the document.
pub fn token_lifetime_seconds() -> Object {
    nullable(
        integer(
            KnownFormat::Int32,
            "Lifetime of the tokens it obtains, in seconds; default 3600 (or the server's \
             maximum, when lower).",
        ),
        Type::Integer,
    )
    .minimum(Some(limits::TOKEN_LIFETIME_MIN_SECS))
    .build()
}
