//! Client secrets: generation, the leak-scanner-friendly format, and keyed hashing.
//!
//! A secret is `tms_` + 43 random base62 characters (256 bits) + a 6-character base62
//! checksum of the random part. The prefix and checksum let secret scanners (GitHub's, GitLab's,
//! trufflehog) recognise a leaked tokenmint secret with no false positives. At rest only
//! HMAC-SHA-256 of the secret under a key derived from the master key is stored: a fast hash is
//! right for 256-bit random secrets (nothing to brute-force), and the key makes a stolen
//! database useless without the master key.

use crate::crypto::{constant_time_eq, sha256};
use crate::ids::{base62_fixed, is_base62, push_random_base62};
use aws_lc_rs::hmac;
use std::fmt;

/// Prefix of every generated client secret.
pub const SECRET_PREFIX: &str = "tms_";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Length of a generated secret.
pub const SECRET_LEN: usize = SECRET_PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
/// Secrets longer than this are refused before any hashing.
pub const MAX_PRESENTED_SECRET_LEN: usize = 512;

/// A client secret in memory. `Debug` and `Display` redact it; the only way to read it is
/// [`ClientSecret::expose`], which makes every use visible in review.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

fn checksum(random: &str) -> String {
    let d = sha256(random.as_bytes());
    let v = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    base62_fixed(u64::from(v), CHECKSUM_LEN)
}

impl ClientSecret {
    pub fn generate() -> Self {
        let mut s = String::with_capacity(SECRET_LEN);
        s.push_str(SECRET_PREFIX);
        push_random_base62(&mut s, RANDOM_LEN);
        let sum = checksum(&s[SECRET_PREFIX.len()..]);
        s.push_str(&sum);
        Self(s)
    }

    /// Wraps a secret presented by a client. Any string is accepted: a wrong one simply fails
    /// to match, and refusing odd-looking input early would make that path faster than the
    /// path of a real client_id with a wrong secret.
    pub fn from_presented(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the string has tokenmint's secret format with a valid checksum (what a leak
    /// scanner checks).
    pub fn has_valid_format(s: &str) -> bool {
        if s.len() != SECRET_LEN || !s.starts_with(SECRET_PREFIX) {
            return false;
        }
        let body = &s[SECRET_PREFIX.len()..];
        if !is_base62(body) {
            return false;
        }
        let (random, sum) = body.split_at(RANDOM_LEN);
        checksum(random) == sum
    }

    /// The first characters, safe to show: enough to tell two secrets apart, far too few
    /// (8 of 43 random characters) to help guess one.
    pub fn hint(&self) -> String {
        let end =
            self.0.char_indices().nth(SECRET_PREFIX.len() + 4).map_or(self.0.len(), |(i, _)| i);
        format!("{}…", &self.0[..end])
    }
}

/// HMAC-SHA-256 of a secret under the master-key-derived hashing key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(Self)
    }

    /// Constant-time comparison.
    pub fn matches(&self, other: &SecretHash) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

/// Hashes secrets with the key derived from the master key.
#[derive(Clone)]
pub struct SecretHasher {
    key: hmac::Key,
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher([redacted])")
    }
}

impl SecretHasher {
    pub fn new(master: &crate::MasterKey) -> Self {
        Self { key: master.secret_hash_key() }
    }

    pub fn hash(&self, secret: &ClientSecret) -> SecretHash {
        let tag = hmac::sign(&self.key, secret.expose().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        SecretHash(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    #[test]
    fn generated_secrets_are_prefixed_checksummed_and_unique() {
        let a = ClientSecret::generate();
        let b = ClientSecret::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("tms_"));
        assert_eq!(a.expose().len(), SECRET_LEN);
        assert!(ClientSecret::has_valid_format(a.expose()));
    }

    #[test]
    fn a_single_changed_character_breaks_the_checksum() {
        let s = ClientSecret::generate().expose().to_owned();
        let mut bytes = s.into_bytes();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        let changed = String::from_utf8(bytes).unwrap();
        assert!(!ClientSecret::has_valid_format(&changed));
    }

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let s = ClientSecret::generate();
        assert!(!format!("{s:?}").contains(&s.expose()[4..12]));
        assert_eq!(format!("{s}"), "[redacted]");
        assert!(s.hint().starts_with("tms_"));
        assert_eq!(s.hint().chars().count(), 9);
    }

    #[test]
    fn hashes_depend_on_the_master_key() {
        let s = ClientSecret::generate();
        let h1 = SecretHasher::new(&MasterKey::generate()).hash(&s);
        let h2 = SecretHasher::new(&MasterKey::generate()).hash(&s);
        assert!(!h1.matches(&h2));
        let m = MasterKey::generate();
        assert!(SecretHasher::new(&m).hash(&s).matches(&SecretHasher::new(&m).hash(&s)));
    }
}
