//! Parsing a compact JWS (RFC 7515 §7.1) up to the point where the signature can be checked.
//!
//! Everything here runs on untrusted input before any cryptography, so each step is bounded
//! and refuses rather than guesses: sizes are checked before decoding, the header is read
//! into a closed struct (duplicate members are an error, as RFC 7515 §4 allows), and only the
//! header members tokenmint relies on are interpreted.

use crate::error::VerifyError;
use crate::jwks::asymmetric_alg;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// A token split into its parts, with a header that passed the checks below.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: what the signature covers.
    pub(crate) signing_input: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    /// Only looked at to refuse: RFC 7515 §4.1.11 forbids accepting a JWS whose critical
    /// extensions are not understood, and this verifier understands none.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Splits and checks the header of `token`: size, structure, `alg`, `typ`, `kid`.
pub(crate) fn parse<'a>(
    token: &'a str,
    max_header_bytes: usize,
    token_types: &[String],
) -> Result<Parsed<'a>, VerifyError> {
    let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
    let (header_b64, payload) = signing_input.split_once('.').ok_or(VerifyError::Malformed)?;
    // Exactly three parts: a fifth-part JWE or a JWS JSON serialization is not an access token.
    if payload.contains('.') || header_b64.is_empty() || payload.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if header_b64.len() > max_header_bytes {
        return Err(VerifyError::TooLarge);
    }
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| VerifyError::Malformed)?;
    let header: Header =
        serde_json::from_slice(&header_json).map_err(|_| VerifyError::Malformed)?;
    if header.crit.is_some() {
        return Err(VerifyError::Malformed);
    }
    // `none`, every HMAC algorithm and anything unknown stop here, before a key is looked up.
    let alg = asymmetric_alg(&header.alg).ok_or(VerifyError::AlgorithmNotAllowed)?;
    if !accepted_typ(header.typ.as_deref(), token_types) {
        return Err(VerifyError::WrongType);
    }
    let kid = header.kid.filter(|k| !k.is_empty()).ok_or(VerifyError::MissingKeyId)?;
    if signature.is_empty() {
        return Err(VerifyError::BadSignature);
    }
    Ok(Parsed { alg, kid, signing_input, payload, signature })
}

/// Whether `typ` is one of `accepted` (RFC 9068 §4 asks for `at+jwt`; other issuers send
/// `JWT`). Media type names are case-insensitive and RFC 7515 §4.1.9 allows omitting the
/// `application/` prefix; an empty accepted value admits a header without `typ`.
fn accepted_typ(typ: Option<&str>, accepted: &[String]) -> bool {
    let Some(typ) = typ else { return accepted.iter().any(String::is_empty) };
    let typ = typ.strip_prefix_ignore_case("application/").unwrap_or(typ);
    !typ.is_empty()
        && accepted.iter().any(|a| {
            let a = a.strip_prefix_ignore_case("application/").unwrap_or(a);
            typ.eq_ignore_ascii_case(a)
        })
}

trait StripPrefixIgnoreCase {
    fn strip_prefix_ignore_case(&self, prefix: &str) -> Option<&str>;
}

impl StripPrefixIgnoreCase for str {
    fn strip_prefix_ignore_case(&self, prefix: &str) -> Option<&str> {
        let head = self.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix).then(|| &self[prefix.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64("{}"))
    }

    fn at_jwt() -> Vec<String> {
        vec!["at+jwt".to_owned()]
    }

    fn parse_header(header: &str) -> Result<Algorithm, VerifyError> {
        let token = token(header);
        parse(&token, 1024, &at_jwt()).map(|p| p.alg)
    }

    #[test]
    fn a_well_formed_access_token_header_is_accepted() {
        let ok = parse_header(r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#);
        assert_eq!(ok, Ok(Algorithm::RS256));
    }

    #[test]
    fn typ_is_compared_case_insensitively_with_or_without_the_application_prefix() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            let header = format!(r#"{{"alg":"ES256","typ":"{typ}","kid":"k"}}"#);
            assert_eq!(parse_header(&header), Ok(Algorithm::ES256), "{typ}");
        }
        for typ in ["JWT", "jwt", "application/jwt", "at+jwtx", "application/"] {
            let header = format!(r#"{{"alg":"ES256","typ":"{typ}","kid":"k"}}"#);
            assert_eq!(parse_header(&header), Err(VerifyError::WrongType), "{typ}");
        }
        assert_eq!(parse_header(r#"{"alg":"ES256","kid":"k"}"#), Err(VerifyError::WrongType));
    }

    #[test]
    fn other_types_are_accepted_only_when_configured_and_an_empty_one_admits_no_typ() {
        let jwt = vec!["JWT".to_owned()];
        let header = |typ: &str| token(&format!(r#"{{"alg":"RS256","typ":"{typ}","kid":"k"}}"#));
        assert!(parse(&header("JWT"), 1024, &jwt).is_ok());
        assert!(parse(&header("application/jwt"), 1024, &jwt).is_ok());
        assert_eq!(parse(&header("at+jwt"), 1024, &jwt).err(), Some(VerifyError::WrongType));
        let untyped = token(r#"{"alg":"RS256","kid":"k"}"#);
        assert_eq!(parse(&untyped, 1024, &jwt).err(), Some(VerifyError::WrongType));
        assert!(parse(&untyped, 1024, &["JWT".to_owned(), String::new()]).is_ok());
        assert_eq!(parse(&header(""), 1024, &[String::new()]).err(), Some(VerifyError::WrongType));
    }

    #[test]
    fn none_hmac_and_unknown_algorithms_are_refused_before_any_key_lookup() {
        for alg in ["none", "None", "HS256", "HS512", "RSA-OAEP", ""] {
            let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"k"}}"#);
            assert_eq!(parse_header(&header), Err(VerifyError::AlgorithmNotAllowed), "{alg}");
        }
    }

    #[test]
    fn a_header_without_kid_or_with_crit_or_duplicate_members_is_refused() {
        assert_eq!(
            parse_header(r#"{"alg":"RS256","typ":"at+jwt"}"#),
            Err(VerifyError::MissingKeyId)
        );
        assert_eq!(
            parse_header(r#"{"alg":"RS256","typ":"at+jwt","kid":"k","crit":["b64"]}"#),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            parse_header(r#"{"alg":"none","alg":"RS256","typ":"at+jwt","kid":"k"}"#),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn tokens_without_exactly_three_parts_are_malformed() {
        let header = b64(r#"{"alg":"RS256","typ":"at+jwt","kid":"k"}"#);
        for token in [
            String::new(),
            "abc".to_owned(),
            format!("{header}.e30"),
            format!("{header}.e30.sig.extra"),
            format!("{header}..sig"),
            ".e30.sig".to_owned(),
        ] {
            assert_eq!(
                parse(&token, 1024, &at_jwt()).map(|p| p.alg),
                Err(VerifyError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn an_oversized_header_is_refused_before_decoding() {
        let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#, "k".repeat(2000));
        let token = token(&header);
        assert_eq!(parse(&token, 1024, &at_jwt()).map(|p| p.alg), Err(VerifyError::TooLarge));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_input_never_panics(input in ".{0,300}") {
            let _ = parse(&input, 1024, &at_jwt());
            let _ = crate::claims::decode(&input, &crate::ClaimMapping::default());
        }

        #[test]
        fn parsing_arbitrary_base64_headers_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let token = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(bytes));
            let _ = parse(&token, 1024, &at_jwt());
        }
    }
}
