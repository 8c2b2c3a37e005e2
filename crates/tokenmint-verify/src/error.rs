//! Typed errors: why a token was refused, why a verifier could not be built, why a fetch failed.
//!
//! No error carries the token or any part of it: the `Display` texts are fixed sentences, safe
//! to log and to put in an RFC 6750 `error_description` (they use none of the characters that
//! RFC 6750 §3 excludes from it).

use http::StatusCode;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("the access token is too large")]
    TooLarge,
    #[error("the access token is not a well-formed JWT")]
    Malformed,
    #[error("the access token is signed with an algorithm that is not accepted")]
    AlgorithmNotAllowed,
    #[error("the access token is not of an accepted type (typ)")]
    WrongType,
    #[error("the access token names no signing key")]
    MissingKeyId,
    #[error("the access token is signed with an unknown key")]
    UnknownKey,
    #[error("the access token's algorithm does not match its signing key")]
    KeyAlgorithmMismatch,
    #[error("the access token's signature is invalid")]
    BadSignature,
    #[error("the access token was issued by another issuer")]
    WrongIssuer,
    #[error("the access token is not meant for this audience")]
    WrongAudience,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token has been revoked")]
    Revoked(RevocationKind),
    /// The claim the issuer's mapping names for the client is missing or empty.
    #[error("the access token names no client")]
    NoClient,
    /// A well-formed, well-signed token with a claim this verifier cannot take as it is.
    #[error("the access token's {0}")]
    InvalidClaim(ClaimProblem),
    /// The issuer's keys could not be fetched for longer than the configured staleness: not the
    /// token's fault, so it maps to 503 rather than 401.
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable,
}

/// What is wrong with a claim of a well-formed token ([`VerifyError::InvalidClaim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClaimProblem {
    /// The claim the mapping names for the environment is neither `sandbox` nor `production`.
    Environment,
    /// The client, organization or scope holds a control character: no identity anyone issued
    /// on purpose, and one that would be handed on in headers and logs.
    ControlCharacter,
    /// A member is given twice, among the claims or inside a claim's value: JSON readers
    /// disagree on which one counts, so the token means different things to different readers.
    RepeatedMember,
    /// A number no JSON reader holds: beyond about 1.8e308, or not zero but read as 0.
    NumberOutOfRange,
    /// A claim of another JSON type than the claim takes.
    WrongType(TokenClaim),
    /// A claim every token must carry is missing.
    Missing(TokenClaim),
}

impl std::fmt::Display for ClaimProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Environment => f.write_str("environment claim is neither sandbox nor production"),
            Self::ControlCharacter => {
                f.write_str("client, organization or scope holds a control character")
            }
            Self::RepeatedMember => f.write_str(
                "claims give a member twice (among the claims or inside one), which JSON readers \
                 read differently",
            ),
            Self::NumberOutOfRange => f.write_str(
                "claims hold a number no JSON reader holds (beyond 1.8e308, or not zero but read \
                 as 0)",
            ),
            Self::WrongType(claim) => {
                write!(f, "{} claim is not {}", claim.described(), claim.expected())
            }
            Self::Missing(claim) => write!(f, "{} claim is missing", claim.described()),
        }
    }
}

/// A claim the verifier reads, to say which one is wrong ([`ClaimProblem`]). The client,
/// scope, environment and organization are read from the claims the issuer's
/// [`ClaimMapping`](crate::ClaimMapping) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenClaim {
    Issuer,
    Expiry,
    IssuedAt,
    NotBefore,
    Audience,
    Subject,
    TokenId,
    Client,
    Environment,
    Scope,
    Organization,
}

impl TokenClaim {
    const fn described(self) -> &'static str {
        match self {
            Self::Issuer => "issuer (iss)",
            Self::Expiry => "expiry (exp)",
            Self::IssuedAt => "issued-at (iat)",
            Self::NotBefore => "not-before (nbf)",
            Self::Audience => "audience (aud)",
            Self::Subject => "subject (sub)",
            Self::TokenId => "token id (jti)",
            Self::Client => "client",
            Self::Environment => "environment",
            Self::Scope => "scope",
            Self::Organization => "organization",
        }
    }

    const fn expected(self) -> &'static str {
        match self {
            Self::Expiry | Self::IssuedAt | Self::NotBefore => {
                "a NumericDate (seconds since 1970 as a JSON number)"
            }
            Self::Audience => "a string or an array of strings",
            Self::Scope => "a space-separated string or an array of scopes without spaces",
            Self::Issuer
            | Self::Subject
            | Self::TokenId
            | Self::Client
            | Self::Environment
            | Self::Organization => "a string",
        }
    }
}

/// Which revocation entry covered a refused token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// The token itself, by `jti`.
    Token,
    /// All tokens of its credential issued before a point in time.
    Credential,
    /// Its signing key.
    Key,
}

/// The reason of a refusal without its details: a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    TooLarge,
    Malformed,
    AlgorithmNotAllowed,
    WrongType,
    MissingKeyId,
    UnknownKey,
    KeyAlgorithmMismatch,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    Revoked,
    KeysUnavailable,
    NoClient,
    InvalidClaim,
}

impl RejectReason {
    /// Every reason, in the order [`MetricsSnapshot::rejected`](crate::MetricsSnapshot) uses.
    pub const ALL: [RejectReason; 16] = [
        Self::TooLarge,
        Self::Malformed,
        Self::AlgorithmNotAllowed,
        Self::WrongType,
        Self::MissingKeyId,
        Self::UnknownKey,
        Self::KeyAlgorithmMismatch,
        Self::BadSignature,
        Self::WrongIssuer,
        Self::WrongAudience,
        Self::Expired,
        Self::NotYetValid,
        Self::Revoked,
        Self::KeysUnavailable,
        Self::NoClient,
        Self::InvalidClaim,
    ];

    /// A stable snake_case name for metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::WrongType => "wrong_type",
            Self::MissingKeyId => "missing_kid",
            Self::UnknownKey => "unknown_kid",
            Self::KeyAlgorithmMismatch => "key_algorithm_mismatch",
            Self::BadSignature => "bad_signature",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::KeysUnavailable => "keys_unavailable",
            Self::NoClient => "no_client",
            Self::InvalidClaim => "invalid_claim",
        }
    }
}

impl VerifyError {
    /// The metric label of this refusal.
    pub const fn reason(&self) -> RejectReason {
        match self {
            Self::TooLarge => RejectReason::TooLarge,
            Self::Malformed => RejectReason::Malformed,
            Self::AlgorithmNotAllowed => RejectReason::AlgorithmNotAllowed,
            Self::WrongType => RejectReason::WrongType,
            Self::MissingKeyId => RejectReason::MissingKeyId,
            Self::UnknownKey => RejectReason::UnknownKey,
            Self::KeyAlgorithmMismatch => RejectReason::KeyAlgorithmMismatch,
            Self::BadSignature => RejectReason::BadSignature,
            Self::WrongIssuer => RejectReason::WrongIssuer,
            Self::WrongAudience => RejectReason::WrongAudience,
            Self::Expired => RejectReason::Expired,
            Self::NotYetValid => RejectReason::NotYetValid,
            Self::Revoked(_) => RejectReason::Revoked,
            Self::KeysUnavailable => RejectReason::KeysUnavailable,
            Self::NoClient => RejectReason::NoClient,
            Self::InvalidClaim(_) => RejectReason::InvalidClaim,
        }
    }

    /// The HTTP status a resource server answers with: 401 for a bad token (RFC 6750 §3.1
    /// `invalid_token`), 503 when the verifier itself cannot judge.
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Why a remote document (metadata, JWKS, feed page) could not be read.
///
/// Each variant's text says only its own part; the cause (the HTTP client's error, the JSON
/// parser's) is its [`source`](std::error::Error::source). Printed as a chain (anyhow's `{:#}`,
/// [`ErrorChain`]), every cause then appears once rather than once per level that embeds it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Its text is the HTTP client's, without the URL, which the error wrapping this one names.
    #[error(transparent)]
    Http(reqwest::Error),
    #[error("request timed out")]
    Timeout,
    #[error("unexpected HTTP status {0}")]
    Status(StatusCode),
    #[error("response body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("response body is not the expected JSON")]
    Json(#[from] serde_json::Error),
}

impl From<reqwest::Error> for FetchError {
    fn from(error: reqwest::Error) -> Self {
        Self::Http(error.without_url())
    }
}

/// Why [`VerifierBuilder::build`](crate::VerifierBuilder::build) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("issuer URL {issuer:?} is invalid: {reason}")]
    InvalidIssuer { issuer: String, reason: &'static str },
    #[error("discovery at {url} failed")]
    Discovery { url: String, source: FetchError },
    /// RFC 8414 §3.3: the metadata must name exactly the issuer it was fetched for.
    #[error("the metadata names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the issuer advertises no signing algorithm this verifier accepts: {advertised:?}")]
    NoUsableAlgorithm { advertised: Vec<String> },
    #[error("fetching the JWKS at {url} failed")]
    Jwks { url: String, source: FetchError },
    #[error("could not build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error("jwks_uri {url:?} is invalid: {reason}")]
    InvalidJwksUri { url: String, reason: &'static str },
    #[error("two issuers are configured with the same URL {0:?}")]
    DuplicateIssuer(String),
}

/// Why the revocation follower could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    #[error("the issuer advertises no revocation_feed_endpoint and none was configured")]
    NoFeedEndpoint,
    #[error("revocation feed URL {url:?} is invalid")]
    InvalidEndpoint { url: String },
}

/// An error followed by each of its causes, `: ` between them, as anyhow's `{:#}` prints
/// one: for log lines, where `%error` alone would show the outermost text only.
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_text_is_a_valid_rfc6750_error_description() {
        const ALL_CLAIMS: [TokenClaim; 11] = [
            TokenClaim::Issuer,
            TokenClaim::Expiry,
            TokenClaim::IssuedAt,
            TokenClaim::NotBefore,
            TokenClaim::Audience,
            TokenClaim::Subject,
            TokenClaim::TokenId,
            TokenClaim::Client,
            TokenClaim::Environment,
            TokenClaim::Scope,
            TokenClaim::Organization,
        ];
        // RFC 6750 §3: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )
        let errors = [
            VerifyError::TooLarge,
            VerifyError::Malformed,
            VerifyError::AlgorithmNotAllowed,
            VerifyError::WrongType,
            VerifyError::MissingKeyId,
            VerifyError::UnknownKey,
            VerifyError::KeyAlgorithmMismatch,
            VerifyError::BadSignature,
            VerifyError::WrongIssuer,
            VerifyError::WrongAudience,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::Revoked(RevocationKind::Token),
            VerifyError::KeysUnavailable,
            VerifyError::NoClient,
            VerifyError::InvalidClaim(ClaimProblem::Environment),
            VerifyError::InvalidClaim(ClaimProblem::ControlCharacter),
            VerifyError::InvalidClaim(ClaimProblem::RepeatedMember),
            VerifyError::InvalidClaim(ClaimProblem::NumberOutOfRange),
        ]
        .into_iter()
        .chain(ALL_CLAIMS.into_iter().flat_map(|c| {
            [
                VerifyError::InvalidClaim(ClaimProblem::WrongType(c)),
                VerifyError::InvalidClaim(ClaimProblem::Missing(c)),
            ]
        }));
        for error in errors {
            let text = error.to_string();
            assert!(
                text.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{text}"
            );
            assert_eq!(RejectReason::ALL[error.reason() as usize], error.reason());
        }
    }
}
