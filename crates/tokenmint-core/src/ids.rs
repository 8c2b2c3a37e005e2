//! Identifiers: client ids, organization slugs and the random ids of secrets, keys and tokens.
//!
//! Generated identifiers use base62 so they survive double-click selection and URLs unescaped,
//! and carry a short prefix so a human (or a secret scanner) can tell what they are.

use crate::crypto;
use std::fmt;
use thiserror::Error;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends `len` uniformly random base62 characters to `out`.
///
/// Rejection sampling keeps the distribution uniform: bytes >= 248 (4 * 62) are discarded
/// instead of being folded, which would bias the first characters of the alphabet.
pub fn push_random_base62(out: &mut String, len: usize) {
    let mut produced = 0;
    let mut buf = [0u8; 64];
    while produced < len {
        crypto::fill_random(&mut buf);
        for &b in &buf {
            if b < 248 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
                produced += 1;
                if produced == len {
                    break;
                }
            }
        }
    }
}

/// `prefix` followed by `len` random base62 characters.
pub fn random_id(prefix: &str, len: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    push_random_base62(&mut s, len);
    s
}

/// Encodes `value` as exactly `width` base62 digits (most significant first).
pub fn base62_fixed(mut value: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits).unwrap_or_default()
}

pub(crate) fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Prefix of every generated client id.
pub const CLIENT_ID_PREFIX: &str = "tmc_";
const CLIENT_ID_RANDOM_LEN: usize = 24;

/// A credential's public identifier.
///
/// tokenmint generates `tmc_` followed by 24 base62 characters, but a client id presented at
/// the token endpoint is untrusted input: [`ClientId::parse`] only bounds its length and
/// character set, so lookups of foreign-looking ids fail as "unknown client", not as a
/// malformed request that would tell an attacker something.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("a client_id is 1 to 128 visible ASCII characters")]
    ClientId,
    #[error(
        "an organization slug is 1 to 63 characters: lower-case letters, digits and '-', \
         starting with a letter or digit"
    )]
    OrgSlug,
}

impl ClientId {
    pub fn generate() -> Self {
        Self(random_id(CLIENT_ID_PREFIX, CLIENT_ID_RANDOM_LEN))
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError::ClientId);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// An organization's slug: the stable short name in URLs, `--org` and the `org` claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgSlug(String);

impl OrgSlug {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        let valid = !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if valid { Ok(Self(s.to_owned())) } else { Err(IdError::OrgSlug) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for OrgSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_client_ids_have_the_prefix_and_parse_back() {
        let id = ClientId::generate();
        assert!(id.as_str().starts_with("tmc_"));
        assert_eq!(id.as_str().len(), 28);
        assert!(is_base62(&id.as_str()[4..]));
        assert_eq!(ClientId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn client_id_parse_refuses_empty_long_and_control_characters() {
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"a".repeat(129)).is_err());
        assert!(ClientId::parse("a b").is_err());
        assert!(ClientId::parse("a\u{0}").is_err());
        assert!(ClientId::parse("legacy-client.01").is_ok());
    }

    #[test]
    fn org_slugs_are_lower_case_dns_like_labels() {
        assert!(OrgSlug::parse("acme").is_ok());
        assert!(OrgSlug::parse("acme-2").is_ok());
        assert!(OrgSlug::parse("-acme").is_err());
        assert!(OrgSlug::parse("Acme").is_err());
        assert!(OrgSlug::parse("ac me").is_err());
        assert!(OrgSlug::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn base62_fixed_pads_and_encodes() {
        assert_eq!(base62_fixed(0, 3), "000");
        assert_eq!(base62_fixed(61, 2), "0z");
        assert_eq!(base62_fixed(62, 2), "10");
    }
}
