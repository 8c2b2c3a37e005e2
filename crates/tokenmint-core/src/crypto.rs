//! The master key and what is derived from it.
//!
//! One 32-byte master key protects everything at rest. Independent subkeys are derived from it
//! with HKDF-SHA-256 (RFC 5869) under distinct labels, so the key that hashes client secrets can
//! never decrypt a signing key and vice versa, and a database dump without the master key
//! reveals neither secrets nor private keys.

use aws_lc_rs::{aead, digest, hkdf, hmac, rand};
use std::fmt;
use thiserror::Error;

const HKDF_SALT: &[u8] = b"tokenmint master key v1";
const LABEL_SECRET_HASH: &[u8] = b"client secret hashing";
const LABEL_KEY_ENCRYPTION: &[u8] = b"signing key encryption";
const LABEL_CHECK: &[u8] = b"master key check";
const LABEL_SESSION: &[u8] = b"portal sessions";

/// Fills `buf` from the operating system's CSPRNG.
///
/// A failing system RNG leaves no safe way to continue issuing secrets or tokens, so this is
/// the one place where tokenmint aborts instead of returning an error.
#[expect(clippy::panic, reason = "a broken system RNG must stop the process, not degrade it")]
pub fn fill_random(buf: &mut [u8]) {
    if rand::fill(buf).is_err() {
        panic!("the system random number generator failed");
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// HMAC-SHA-256 of `message` under `key`, as lower-case hex (webhook signatures).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, message).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MasterKeyError {
    #[error("the master key must be 64 hexadecimal characters (32 random bytes)")]
    Format,
}

/// The 32-byte master key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        fill_random(&mut k);
        Self(k)
    }

    /// Parses 64 hex characters; surrounding whitespace (a trailing newline in a file) is ignored.
    pub fn from_hex(s: &str) -> Result<Self, MasterKeyError> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(MasterKeyError::Format);
        }
        let mut k = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = hex_val(chunk[0]).ok_or(MasterKeyError::Format)?;
            let lo = hex_val(chunk[1]).ok_or(MasterKeyError::Format)?;
            k[i] = (hi << 4) | lo;
        }
        Ok(Self(k))
    }

    /// The hex form, for writing a freshly generated key to its file.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s
    }

    fn derive(&self, label: &[u8]) -> [u8; 32] {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(&self.0);
        let mut out = [0u8; 32];
        let info = [label];
        // 32 bytes is far below HKDF-SHA-256's 8160-byte limit, so neither call can fail.
        if let Ok(okm) = prk.expand(&info, hkdf::HKDF_SHA256) {
            let _ = okm.fill(&mut out);
        }
        out
    }

    /// The key that hashes client secrets.
    pub fn secret_hash_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.derive(LABEL_SECRET_HASH))
    }

    /// The key that signs portal session ids and CSRF tokens.
    pub fn session_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.derive(LABEL_SESSION))
    }

    /// The AEAD that encrypts signing keys at rest.
    pub fn key_encryption(&self) -> KeyEncryption {
        let material = self.derive(LABEL_KEY_ENCRYPTION);
        KeyEncryption { material }
    }

    /// A value stored with the data this key protects, so that starting with a different key
    /// fails with a clear message instead of with undecryptable keys and unmatched secrets.
    pub fn check_value(&self) -> String {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &self.derive(LABEL_CHECK));
        let tag = hmac::sign(&k, b"tokenmint");
        tag.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    #[error("encryption failed")]
    Seal,
    #[error(
        "a signing key could not be decrypted: the master key is not the one it was encrypted with, \
         or the stored key is damaged"
    )]
    Open,
}

/// AES-256-GCM under a key derived from the master key. The ciphertext layout is
/// `nonce (12) || ciphertext || tag (16)`; the associated data binds it to its owner
/// (a key id), so a ciphertext cannot be swapped onto another row.
pub struct KeyEncryption {
    material: [u8; 32],
}

impl fmt::Debug for KeyEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryption([redacted])")
    }
}

impl KeyEncryption {
    fn key(&self) -> Result<aead::LessSafeKey, SealError> {
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, &self.material)
            .map_err(|_| SealError::Seal)?;
        Ok(aead::LessSafeKey::new(unbound))
    }

    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = self.key()?;
        let mut nonce = [0u8; aead::NONCE_LEN];
        fill_random(&mut nonce);
        let mut in_out = plaintext.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(associated),
            &mut in_out,
        )
        .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(nonce.len() + in_out.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < aead::NONCE_LEN + 16 {
            return Err(SealError::Open);
        }
        let key = self.key().map_err(|_| SealError::Open)?;
        let (nonce, body) = sealed.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut in_out = body.to_vec();
        let plain = key
            .open_in_place(nonce, aead::Aad::from(associated), &mut in_out)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_round_trips_through_hex_and_never_debugs_its_bytes() {
        let k = MasterKey::generate();
        let hex = k.to_hex();
        let back = MasterKey::from_hex(&format!("{hex}\n")).unwrap();
        assert_eq!(back.check_value(), k.check_value());
        assert!(!format!("{k:?}").contains(&hex[..8]));
        assert!(MasterKey::from_hex("zz").is_err());
        assert!(MasterKey::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_master_key_and_owner() {
        let k = MasterKey::generate();
        let sealed = k.key_encryption().seal(b"private", b"kid-1").unwrap();
        assert_eq!(k.key_encryption().open(&sealed, b"kid-1").unwrap(), b"private");
        assert_eq!(k.key_encryption().open(&sealed, b"kid-2"), Err(SealError::Open));
        let other = MasterKey::generate();
        assert_eq!(other.key_encryption().open(&sealed, b"kid-1"), Err(SealError::Open));
        assert_eq!(k.key_encryption().open(&sealed[..10], b"kid-1"), Err(SealError::Open));
    }

    #[test]
    fn different_master_keys_have_different_check_values() {
        assert_ne!(MasterKey::generate().check_value(), MasterKey::generate().check_value());
    }
}
