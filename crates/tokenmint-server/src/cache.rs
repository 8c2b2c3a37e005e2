//! The credential cache that keeps the token endpoint off the database.
//!
//! Entries are loaded on first use and then served from memory; unknown client ids are cached
//! too (as `None`), so a flood of made-up ids costs one lookup each, not one per request. Every
//! change to a credential invalidates its entry: at once when the change is made in this
//! process, through the change log when another process makes it.
//!
//! A lookup that misses reads the store while an invalidation may be racing it; the
//! `epoch` counter makes the loser of that race drop its (possibly stale) result instead of
//! caching it.
//!
//! An entry is compact ([`CachedCredential`]): with 100,000 credentials in use, the cache is
//! most of the server's memory.
//!
//! An entry also holds what the token path changes on every token, so that no table keyed by
//! client id is kept beside the cache for it:
//! - the state of the credential's token-request limit (a GCRA cell, see
//!   [`tokenmint_http::ratelimit::check_cell`]), which outlives the entry: the client's first
//!   entry holds the client's cell, and every later entry of that client points to that first
//!   one and counts in its cell. An entry dropped by an invalidation leaves the first one with
//!   the cache until the next entry of that client points to it
//!   ([`CredentialCache::sweep_idle_limits`] forgets those that are as good as new), so that
//!   editing a credential never hands its client a fresh burst, and a request still holding an
//!   older entry counts in the same cell. A credential never changed pays 8 bytes for this (the
//!   cell), in its entry, not a block of its own; a later entry's pointer to the first one is
//!   kept beside it, with what few credentials have ([`CachedCredential`]), and read without
//!   a lock all the same;
//! - the network it was last used from, for the new-network alert ([`crate::alerts`]);
//! - its usage not yet written to the store (tokens of the current minute, when each secret was
//!   last used), which the usage recorder lists and the flusher takes ([`crate::usage`]). An
//!   entry replaced while it holds usage keeps it until the flusher takes it from that entry;
//!   the new entry starts from nothing, so nothing is lost or counted twice.

use quick_cache::sync::Cache;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokenmint_core::assertion::ClientKey;
use tokenmint_core::credential::{
    AuthFailure, Credential, CredentialStatus, RevocationCutoff, standing,
};
use tokenmint_core::grant::Terms;
use tokenmint_core::{Environment, Permissions, SecretHash, UnixTime};
use tokenmint_store::{Store, StoreError};

/// A credential as the token path wants it, and nothing more: one is kept for every credential
/// in use, so every byte counts a hundred thousand times.
///
/// The entry is one heap block (its `Arc`) for a credential as `credentials create` makes it:
/// - what many credentials share (the organization; the permissions with their scope string
///   and audiences; the token claims with their JSON) is shared, not copied, and pointed to
///   once ([`Profile`]);
/// - the client id and the first secret (its hash and id) are held in place, which generated
///   ids make possible: they have a fixed form, a prefix and a fixed number of base62
///   characters, so the prefix is implied and the characters are packed six bits each
///   ([`Packed`]: 18 bytes for a client id of 28 characters, 12 for a secret id of 20). Read
///   back, an id is decoded into a value on the stack ([`IdText`]);
/// - optional numbers are plain integers with a sentinel for "none" ([`NEVER`],
///   [`NO_LIMIT`]), half the size of an `Option`;
/// - what few credentials have (further secrets in a rotation's overlap, a secret's end, public
///   keys, ids not of the generated form, the name a token hook is told, a revocation cut-off,
///   the first entry of a changed credential whose limit cell later entries share) is in one
///   further block, [`Rare`], that most entries do without;
/// - what the token path changes (the limit's state, the last network, usage not yet
///   written) is atomics in place, see the module documentation; a last-used time is seconds
///   in 32 bits ([`held_time`]), enough until 2106.
///
/// What the token path never reads (timestamps, secret hints, the organization's claims apart
/// from their effect) is not kept. Admin and portal paths read credentials from the store, never
/// from here.
pub struct CachedCredential {
    /// The organization, the grants and the token claims, shared.
    profile: Arc<Profile>,
    rare: Option<Box<Rare>>,
    /// Storage revision: what the entry was read at.
    revision: i64,
    /// [`NEVER`] when it does not expire.
    expires_at: UnixTime,
    /// The token-request limit's GCRA cell, unless `Rare::limit_holder` holds the client's.
    limit: AtomicU64,
    /// The network it was last used from ([`crate::alerts::network_key`]), 0 for none yet.
    network: AtomicU64,
    /// Tokens issued and not yet counted in the store: the minute (minutes since the Unix
    /// epoch) in the high half, how many in the low half; 0 when none.
    tokens: AtomicU64,
    /// When the first secret was last used, not yet written ([`held_time`]); [`NOT_USED`] when
    /// nothing is.
    first_used: AtomicU32,
    /// The first of `secrets` secrets; the others are in `rare`.
    first_secret: CachedSecret,
    /// The client id when it has the generated form, else in `rare`.
    client_id: PackedClientId,
    token_lifetime_secs: u32,
    /// [`NO_LIMIT`] when the server's default applies.
    rate_limit_per_minute: u32,
    environment: Environment,
    status: CredentialStatus,
    /// How many secrets: 0 (only keys) or 1 to [`MAX_LIVE_SECRETS`].
    ///
    /// [`MAX_LIVE_SECRETS`]: tokenmint_core::credential::MAX_LIVE_SECRETS
    secrets: u8,
    /// Whether the usage recorder has the entry on its list of entries with usage to write.
    listed: AtomicBool,
}

/// What credentials of the same organization, grants and claims share: one block for the
/// three, so that an entry points to it once. The slug is held in the block ([`Slug`]), not
/// shared apart: where every partner is an organization of its own, each profile is one
/// block of 64 bytes and one slot of 8 in [`Shared`], and a separate shared slug would add a
/// block and a table slot for each.
#[derive(Debug)]
struct Profile {
    /// The owning organization's slug.
    org: Slug,
    /// Permissions, scopes and audiences.
    grants: Arc<Grants>,
    /// The custom claims of its tokens: the organization's, overridden by its own.
    claims: Arc<Claims>,
}

/// Profiles are one when their organization is, and their grants and claims are the same
/// shared values ([`Shared`] holds one of each).
impl PartialEq for Profile {
    fn eq(&self, other: &Self) -> bool {
        self.org == other.org
            && Arc::ptr_eq(&self.grants, &other.grants)
            && Arc::ptr_eq(&self.claims, &other.claims)
    }
}

impl Eq for Profile {}

impl std::hash::Hash for Profile {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.org.hash(state);
        std::ptr::hash(Arc::as_ptr(&self.grants), state);
        std::ptr::hash(Arc::as_ptr(&self.claims), state);
    }
}

/// The most bytes of a slug held in place: most slugs are a word or two (a slug may have up to
/// 63 characters; a longer one is a block of its own).
const SHORT_SLUG: usize = 22;

/// An organization's slug, in place when it is short.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Slug {
    Short(u8, [u8; SHORT_SLUG]),
    Long(Box<str>),
}

impl Slug {
    fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= SHORT_SLUG => {
                let mut short = [0; SHORT_SLUG];
                short[..bytes.len()].copy_from_slice(bytes);
                Self::Short(len, short)
            }
            _ => Self::Long(text.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `str`, whole: always UTF-8.
            Self::Short(len, bytes) => {
                std::str::from_utf8(bytes.get(..usize::from(*len)).unwrap_or_default())
                    .unwrap_or_default()
            }
            Self::Long(text) => text,
        }
    }
}

impl std::fmt::Debug for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// "Does not expire", for a credential or a secret: the one instant an expiry could name that no
/// clock reaches, so a credential stored as expiring then is the same as one that never does.
const NEVER: UnixTime = UnixTime::MAX;
/// "The server's default limit": tokenmint stores limits of at most 1,000,000 per minute.
const NO_LIMIT: u32 = u32::MAX;
/// "No use to write" for a last-used time, which an entry holds as seconds since the Unix epoch
/// in 32 bits ([`held_time`]): no token is issued at the epoch's first second.
const NOT_USED: u32 = 0;

/// A last-used time as an entry holds it, when it can: from the epoch's second second to 2106.
/// A time outside that is handed back to the caller, which keeps it (as a key's use).
fn held_time(at: UnixTime) -> Option<u32> {
    u32::try_from(at).ok().filter(|t| *t != NOT_USED)
}

/// A client id of the generated form ([`tokenmint_core::ClientId::generate`]): `tmc_` and 24
/// base62 characters, packed in 18 bytes.
type PackedClientId = Packed<18>;
/// A secret id of the generated form (`sec_` and 16 base62 characters), packed in 12 bytes.
type PackedSecretId = Packed<12>;
const CLIENT_ID_PREFIX: &str = tokenmint_core::ids::CLIENT_ID_PREFIX;
const SECRET_ID_PREFIX: &str = "sec_";
/// The longest id of the generated form, prefix included: what [`IdText`] decodes into.
const LONGEST_PACKED: usize = 28;
const _: () = assert!(CLIENT_ID_PREFIX.len() + PackedClientId::CHARS <= LONGEST_PACKED);
const _: () = assert!(SECRET_ID_PREFIX.len() + PackedSecretId::CHARS <= LONGEST_PACKED);

fn or_never(t: Option<UnixTime>) -> UnixTime {
    t.unwrap_or(NEVER)
}

fn unless_never(t: UnixTime) -> Option<UnixTime> {
    (t != NEVER).then_some(t)
}

/// An id of the generated form (a prefix, which the field's type implies, and `CHARS` base62
/// characters, [`tokenmint_core::ids::push_random_base62`]), held in place: each character
/// as its code, 1 to 62, in six bits; four characters in three bytes. All zero bits is "not held
/// here", which no id is (no character's code is 0); an id of any other form is not packed.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Packed<const BYTES: usize>([u8; BYTES]);

impl<const BYTES: usize> Packed<BYTES> {
    const NONE: Self = Self([0; BYTES]);
    /// How many characters follow the prefix: six bits each, no bit spare.
    const CHARS: usize = BYTES * 8 / 6;

    /// `text` packed, when it is `prefix` and `CHARS` base62 characters.
    fn new(text: &str, prefix: &str) -> Option<Self> {
        const { assert!(BYTES.is_multiple_of(3), "four characters to three bytes") };
        let chars = text.strip_prefix(prefix)?.as_bytes();
        if chars.len() != Self::CHARS {
            return None;
        }
        let mut packed = [0; BYTES];
        for (four, three) in chars.chunks(4).zip(packed.chunks_mut(3)) {
            let mut bits = 0u32;
            for c in four {
                bits = (bits << 6) | u32::from(code(*c)?);
            }
            for (i, byte) in three.iter_mut().enumerate() {
                *byte = bits.to_be_bytes()[i + 1];
            }
        }
        Some(Self(packed))
    }

    /// The id, prefix and all; `None` when not held here.
    fn get(&self, prefix: &str) -> Option<IdText<'static>> {
        if *self == Self::NONE {
            return None;
        }
        let mut text = [0; LONGEST_PACKED];
        let (head, rest) = text.split_at_mut(prefix.len());
        head.copy_from_slice(prefix.as_bytes());
        for (three, four) in self.0.chunks(3).zip(rest.chunks_mut(4)) {
            let bits = three.iter().fold(0u32, |bits, b| (bits << 8) | u32::from(*b));
            for (i, c) in four.iter_mut().enumerate() {
                let shift = 6 * (3 - i);
                // Six bits: the conversion cannot fail.
                *c = character(u8::try_from((bits >> shift) & 0x3F).unwrap_or(0));
            }
        }
        // `get` is only ever given the prefix the id was packed with, which fits (checked
        // where the types are named), so the length fits a byte.
        let len = u8::try_from(prefix.len() + Self::CHARS).unwrap_or(0);
        Some(IdText(Text::Decoded(text, len)))
    }
}

/// A base62 character's code in a [`Packed`] id: `0`–`9` are 1–10, `A`–`Z` 11–36, `a`–`z`
/// 37–62.
fn code(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0' + 1),
        b'A'..=b'Z' => Some(c - b'A' + 11),
        b'a'..=b'z' => Some(c - b'a' + 37),
        _ => None,
    }
}

/// The character of a code ([`code`]); a code no character has (never packed) reads as `?`.
fn character(code: u8) -> u8 {
    match code {
        1..=10 => b'0' + code - 1,
        11..=36 => b'A' + code - 11,
        37..=62 => b'a' + code - 37,
        _ => b'?',
    }
}

impl<const BYTES: usize> std::fmt::Debug for Packed<BYTES> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The characters after the prefix, which the field's type implies.
        std::fmt::Debug::fmt(&self.get("").unwrap_or(IdText::EMPTY), f)
    }
}

/// An id as an entry gives it back: the text, when the entry holds it as text (in [`Rare`]), or
/// decoded from its packed form into this value. It reads as a `str` ([`IdText::as_str`]).
#[derive(Clone, Copy)]
pub struct IdText<'a>(Text<'a>);

#[derive(Clone, Copy)]
enum Text<'a> {
    Held(&'a str),
    /// The bytes, of which the first `.1` are the id.
    Decoded([u8; LONGEST_PACKED], u8),
}

impl<'a> IdText<'a> {
    const EMPTY: Self = Self(Text::Held(""));

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Text::Held(text) => text,
            // Written from ASCII characters only: the fallback is never taken.
            Text::Decoded(bytes, len) => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or(""),
        }
    }
}

impl std::ops::Deref for IdText<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for IdText<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for IdText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for IdText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for IdText<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IdText<'_> {}

impl PartialEq<str> for IdText<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for IdText<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<IdText<'_>> for String {
    fn from(id: IdText<'_>) -> Self {
        id.as_str().to_owned()
    }
}

/// What few credentials have.
#[derive(Debug, Default)]
struct Rare {
    /// The client id, when it does not have the generated form.
    client_id: Option<Box<str>>,
    /// The secrets after the first: a rotation's overlap.
    more_secrets: Box<[CachedSecret]>,
    /// The ids of secrets whose ids do not have the generated form, by [`CachedSecret::slot`].
    secret_ids: Box<[Box<str>]>,
    /// Public keys whose `private_key_jwt` assertions authenticate the credential.
    public_keys: Box<[ClientKey]>,
    /// For the token hook's request, which names the credential; kept only by a cache whose
    /// server has a hook ([`CredentialCache::without_names`]).
    name: Option<Box<str>>,
    /// Tokens issued at or before this are revoked.
    tokens_revoked_before: Option<RevocationCutoff>,
    /// When each secret stops working, by [`CachedSecret::index`] ([`NEVER`] for one that does
    /// not); empty when none does.
    secret_ends: Box<[UnixTime]>,
    /// When each of `more_secrets` was last used, not yet written ([`held_time`]; [`NOT_USED`]
    /// when nothing is).
    more_used: Box<[AtomicU32]>,
    /// The first entry of the client, whose limit cell this entry counts in instead of its
    /// own (see [`CredentialCache::entry`]): only for an entry made after an earlier one of the
    /// same client, when a credential was changed.
    limit_holder: Option<Arc<CachedCredential>>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.client_id.is_none()
            && self.more_secrets.is_empty()
            && self.secret_ids.is_empty()
            && self.public_keys.is_empty()
            && self.name.is_none()
            && self.tokens_revoked_before.is_none()
            && self.secret_ends.is_empty()
            && self.limit_holder.is_none()
    }
}

/// What credentials with the same permissions and audiences share.
#[derive(Debug)]
struct Grants {
    permissions: Permissions,
    /// Every scope the permissions allow, space-separated: the default grant.
    all_scopes: Box<str>,
    audiences: Box<[String]>,
}

/// The custom claims of tokens, shared by every credential whose tokens carry the same (most
/// carry their organization's, or none).
#[derive(Debug, Default)]
struct Claims {
    claims: tokenmint_core::CustomClaims,
    /// The same as JSON object members, serialised once here rather than per token.
    json: Box<str>,
}

/// Shared claims, found by their JSON.
struct ByJson(Arc<Claims>);

impl std::borrow::Borrow<str> for ByJson {
    fn borrow(&self) -> &str {
        &self.0.json
    }
}

impl PartialEq for ByJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.json == other.0.json
    }
}

impl Eq for ByJson {}

impl std::hash::Hash for ByJson {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.json.hash(state);
    }
}

/// A secret as authentication needs it: its hash and the id that usage is noted under (its end,
/// when it has one, is in [`Rare`]: a secret ends in a rotation's overlap, when the credential
/// has a second one); never its hint or timestamps.
#[derive(Debug, Clone, Copy)]
struct CachedSecret {
    hash: SecretHash,
    /// The id when it has the generated form, else `Rare::secret_ids[slot]`.
    id: PackedSecretId,
    slot: u8,
    /// Its place among the credential's secrets: its end is `Rare::secret_ends[index]`.
    index: u8,
}

impl CachedSecret {
    const NONE: Self = Self { hash: SecretHash([0; 32]), id: Packed::NONE, slot: 0, index: 0 };
}

impl std::fmt::Debug for CachedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets' hashes are redacted by their own `Debug`; their ids and the rest are
        // identifiers, not secrets.
        f.debug_struct("CachedCredential")
            .field("client_id", &self.client_id())
            .field("org", &self.profile.org)
            .field("environment", &self.environment)
            .field("status", &self.status)
            .field("revision", &self.revision)
            .field("grants", &self.profile.grants)
            .field("secrets", &self.secrets().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl CachedCredential {
    pub fn new(credential: Credential) -> Self {
        Self::compact(credential, true)
    }

    /// The entry of a credential, with its name or without.
    pub fn compact(credential: Credential, keep_name: bool) -> Self {
        let claims = credential.token_claims();
        let Credential {
            client_id,
            name,
            org,
            environment,
            permissions,
            audiences,
            token_lifetime_secs,
            rate_limit_per_minute,
            status,
            expires_at,
            tokens_revoked_before,
            secrets,
            public_keys,
            revision,
            ..
        } = credential;
        let mut rare = Rare {
            public_keys: public_keys.into_boxed_slice(),
            name: keep_name.then(|| name.into_boxed_str()),
            tokens_revoked_before,
            ..Rare::default()
        };
        let packed_id = Packed::new(client_id.as_str(), CLIENT_ID_PREFIX);
        if packed_id.is_none() {
            rare.client_id = Some(client_id.into_string().into_boxed_str());
        }
        let mut odd_ids = Vec::new();
        let ends: Box<[UnixTime]> = if secrets.iter().any(|s| s.expires_at.is_some()) {
            secrets.iter().map(|s| or_never(s.expires_at)).collect()
        } else {
            Box::default()
        };
        rare.secret_ends = ends;
        let mut cached = secrets.into_iter().enumerate().map(|(index, s)| {
            let id = Packed::new(&s.id, SECRET_ID_PREFIX).unwrap_or_else(|| {
                odd_ids.push(s.id.into_boxed_str());
                Packed::NONE
            });
            // At most MAX_LIVE_SECRETS (5) secrets: the slot and index always fit.
            let slot = u8::try_from(odd_ids.len().saturating_sub(1)).unwrap_or(u8::MAX);
            let index = u8::try_from(index).unwrap_or(u8::MAX);
            CachedSecret { hash: s.hash, id, slot, index }
        });
        let first_secret = cached.next();
        let more_secrets: Box<[CachedSecret]> = cached.collect();
        let count = usize::from(first_secret.is_some()) + more_secrets.len();
        rare.more_used = more_secrets.iter().map(|_| AtomicU32::new(NOT_USED)).collect();
        rare.more_secrets = more_secrets;
        rare.secret_ids = odd_ids.into_boxed_slice();
        let profile = shared().intern(org, permissions, audiences, claims);
        Self {
            profile,
            rare: (!rare.is_empty()).then(|| Box::new(rare)),
            revision,
            expires_at: or_never(expires_at),
            limit: AtomicU64::new(0),
            network: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            first_used: AtomicU32::new(NOT_USED),
            first_secret: first_secret.unwrap_or(CachedSecret::NONE),
            client_id: packed_id.unwrap_or(Packed::NONE),
            token_lifetime_secs,
            // A stored limit of u32::MAX (tokenmint writes at most 1,000,000) stays a limit
            // of its own, as good as none.
            rate_limit_per_minute: rate_limit_per_minute.map_or(NO_LIMIT, |r| r.min(NO_LIMIT - 1)),
            environment,
            status,
            secrets: u8::try_from(count).unwrap_or(u8::MAX),
            listed: AtomicBool::new(false),
        }
    }

    /// Its client id: decoded from the entry when it has the generated form.
    pub fn client_id(&self) -> IdText<'_> {
        match self.client_id.get(CLIENT_ID_PREFIX) {
            Some(id) => id,
            None => self
                .rare
                .as_ref()
                .and_then(|r| r.client_id.as_deref())
                .map_or(IdText::EMPTY, |id| IdText(Text::Held(id))),
        }
    }

    /// The owning organization's slug.
    pub fn org(&self) -> &str {
        self.profile.org.as_str()
    }

    /// Its name, when the cache keeps names (a token hook is configured), else empty.
    pub fn name(&self) -> &str {
        self.rare.as_ref().and_then(|r| r.name.as_deref()).unwrap_or_default()
    }

    /// What a token hook is told of this credential, whose id ([`Self::client_id`]) the caller
    /// has at hand.
    pub fn hook_subject<'a>(&'a self, client_id: &'a str) -> crate::hook::Subject<'a> {
        crate::hook::Subject {
            client_id,
            name: self.name(),
            org: self.org(),
            environment: self.environment,
            revision: self.revision,
        }
    }

    pub fn status(&self) -> CredentialStatus {
        self.status
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// Storage revision: what the entry was read at.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Its own limit of token requests per minute, when it has one.
    pub fn rate_limit_per_minute(&self) -> Option<u32> {
        (self.rate_limit_per_minute != NO_LIMIT).then_some(self.rate_limit_per_minute)
    }

    pub fn expires_at(&self) -> Option<UnixTime> {
        unless_never(self.expires_at)
    }

    /// Tokens issued at or before this are revoked.
    pub fn tokens_revoked_before(&self) -> Option<RevocationCutoff> {
        self.rare.as_ref().and_then(|r| r.tokens_revoked_before)
    }

    /// The custom claims of its tokens: the organization's, overridden by its own.
    pub fn claims(&self) -> &tokenmint_core::CustomClaims {
        &self.profile.claims.claims
    }

    /// The same as JSON object members, serialised once when the entry was made.
    pub fn claims_json(&self) -> &str {
        &self.profile.claims.json
    }

    /// Public keys whose `private_key_jwt` assertions authenticate the credential.
    pub fn public_keys(&self) -> &[ClientKey] {
        self.rare.as_ref().map_or(&[], |r| &r.public_keys)
    }

    pub fn permissions(&self) -> &Permissions {
        &self.profile.grants.permissions
    }

    /// Every scope the credential may request, space-separated: the default grant.
    pub fn all_scopes(&self) -> &str {
        &self.profile.grants.all_scopes
    }

    pub fn audiences(&self) -> &[String] {
        &self.profile.grants.audiences
    }

    /// What a grant is decided on.
    pub fn terms(&self) -> Terms<'_> {
        Terms {
            permissions: &self.profile.grants.permissions,
            audiences: &self.profile.grants.audiences,
            token_lifetime_secs: self.token_lifetime_secs,
            expires_at: self.expires_at(),
        }
    }

    pub fn is_expired(&self, now: UnixTime) -> bool {
        standing::is_expired(self.expires_at(), now)
    }

    /// Its secrets, the one held in place first.
    fn secrets(&self) -> impl Iterator<Item = &CachedSecret> {
        let more = self.rare.as_ref().map_or(&[][..], |r| &r.more_secrets);
        std::iter::once(&self.first_secret).take(usize::from(self.secrets.min(1))).chain(more)
    }

    /// When a secret stops working, [`NEVER`] when it does not.
    fn secret_end(&self, secret: &CachedSecret) -> UnixTime {
        self.rare
            .as_ref()
            .and_then(|r| r.secret_ends.get(usize::from(secret.index)))
            .copied()
            .unwrap_or(NEVER)
    }

    fn secret_id<'a>(&'a self, secret: &CachedSecret) -> IdText<'a> {
        match secret.id.get(SECRET_ID_PREFIX) {
            Some(id) => id,
            None => self
                .rare
                .as_ref()
                .and_then(|r| r.secret_ids.get(usize::from(secret.slot)))
                .map_or(IdText::EMPTY, |id| IdText(Text::Held(id))),
        }
    }

    /// [`Credential::authenticate`], on what is kept, by the same rules; the matching secret's
    /// id is returned.
    pub fn authenticate(
        &self,
        presented: &SecretHash,
        now: UnixTime,
    ) -> Result<IdText<'_>, AuthFailure> {
        standing::authenticate(
            self.secrets(),
            |s| (&s.hash, unless_never(self.secret_end(s))),
            presented,
            self.status,
            self.expires_at(),
            now,
        )
        .map(|s| self.secret_id(s))
    }

    /// [`Credential::usable`].
    pub fn usable(&self, now: UnixTime) -> Result<(), AuthFailure> {
        standing::usable(self.status, self.expires_at(), now)
    }

    /// [`Credential::revokes_token`].
    pub fn revokes_token(&self, iat: UnixTime, jti: &str) -> bool {
        standing::revokes_token(self.tokens_revoked_before(), iat, jti)
    }

    /// [`Credential::new_token_id`].
    pub fn new_token_id(&self, now_micros: i64) -> String {
        standing::new_token_id(self.tokens_revoked_before(), now_micros)
    }

    /// The state of its token-request limit, for [`tokenmint_http::Limits::check_in`].
    pub fn limit_cell(&self) -> &AtomicU64 {
        self.limit_holder().map_or(&self.limit, |h| &h.limit)
    }

    fn limit_holder(&self) -> Option<&Arc<CachedCredential>> {
        self.rare.as_ref().and_then(|r| r.limit_holder.as_ref())
    }

    /// Notes the network of a use (a non-zero key, [`crate::alerts::network_key`]) and returns
    /// the one noted before (0 for none).
    pub fn swap_network(&self, network: u64) -> u64 {
        self.network.swap(network, Ordering::AcqRel)
    }

    /// Notes one token issued at `at`. Returns the tokens of an earlier minute that the entry
    /// no longer holds (minute's start, count), which the caller must count: the entry holds
    /// one minute at a time, and a minute outside what it can hold is handed back at once.
    pub(crate) fn note_token(&self, at: UnixTime) -> Option<(UnixTime, i64)> {
        let minute = at.div_euclid(60);
        let Ok(packed_minute) = u32::try_from(minute) else {
            return Some((at - at.rem_euclid(60), 1));
        };
        let mut current = self.tokens.load(Ordering::Acquire);
        loop {
            let (held_minute, held) = unpack_tokens(current);
            let (next, pushed_out) = if held == 0 {
                (pack_tokens(packed_minute, 1), None)
            } else if held_minute == packed_minute && held < u32::MAX {
                (current + 1, None)
            } else {
                let start = i64::from(held_minute) * 60;
                (pack_tokens(packed_minute, 1), Some((start, i64::from(held))))
            };
            match self.tokens.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return pushed_out,
                Err(now_held) => current = now_held,
            }
        }
    }

    /// Notes that the secret `secret_id` was used at `at`; false when it is none of the entry's
    /// secrets (a key's thumbprint) or `at` is a time the entry cannot hold ([`held_time`]):
    /// a use the caller must keep.
    pub(crate) fn note_secret(&self, secret_id: &str, at: UnixTime) -> bool {
        let Some(at) = held_time(at) else {
            return false;
        };
        for (i, s) in self.secrets().enumerate() {
            if self.secret_id(s) == secret_id {
                let cell = match i.checked_sub(1) {
                    None => Some(&self.first_used),
                    Some(more) => self.rare.as_ref().and_then(|r| r.more_used.get(more)),
                };
                if let Some(cell) = cell {
                    cell.fetch_max(at, Ordering::AcqRel);
                    return true;
                }
            }
        }
        false
    }

    /// Marks the entry as listed for the usage flusher; true when it was not, and the caller
    /// must list it.
    pub(crate) fn list(&self) -> bool {
        !self.listed.swap(true, Ordering::SeqCst)
    }

    /// Unmarks the entry, before its usage is taken: usage noted from then on lists it again.
    pub(crate) fn unlist(&self) {
        self.listed.store(false, Ordering::SeqCst);
    }

    /// Takes the tokens not yet counted: (minute's start, count).
    pub(crate) fn take_tokens(&self) -> Option<(UnixTime, i64)> {
        let (minute, count) = unpack_tokens(self.tokens.swap(0, Ordering::AcqRel));
        (count > 0).then(|| (i64::from(minute) * 60, i64::from(count)))
    }

    /// Takes the last-used times not yet written: (secret id, time) each.
    pub(crate) fn take_last_used(&self) -> impl Iterator<Item = (IdText<'_>, UnixTime)> {
        let more = self.rare.as_ref().map_or(&[][..], |r| &r.more_used);
        self.secrets().zip(std::iter::once(&self.first_used).chain(more)).filter_map(|(s, cell)| {
            let at = cell.swap(NOT_USED, Ordering::AcqRel);
            (at != NOT_USED).then(|| (self.secret_id(s), UnixTime::from(at)))
        })
    }

    /// The entry whose cell is the client's: this one or its holder.
    fn limit_root(self: &Arc<Self>) -> Arc<Self> {
        self.limit_holder().cloned().unwrap_or_else(|| self.clone())
    }

    /// The entry with the limit's state and the last network of the entries before it. The
    /// holder is kept beside the entry ([`Rare`]), as few entries have one.
    fn taking_over(mut self, holder: Arc<CachedCredential>, network: u64) -> Self {
        self.rare.get_or_insert_with(Box::default).limit_holder = Some(holder);
        self.network = AtomicU64::new(network);
        self
    }

    /// The credential as the entry holds it, for tests that compare the two: everything the
    /// entry keeps; the organization's claims are folded into `claims`, and
    /// what the entry does not keep (secrets, timestamps, the name in a cache without names)
    /// is empty.
    #[cfg(test)]
    pub fn to_credential(&self) -> Credential {
        Credential {
            client_id: tokenmint_core::ClientId::parse(&self.client_id())
                .expect("read from a ClientId"),
            name: self.name().to_owned(),
            org: self.org().to_owned(),
            environment: self.environment,
            permissions: self.profile.grants.permissions.clone(),
            audiences: self.profile.grants.audiences.to_vec(),
            token_lifetime_secs: self.token_lifetime_secs,
            rate_limit_per_minute: self.rate_limit_per_minute(),
            status: self.status,
            expires_at: self.expires_at(),
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
            tokens_revoked_before: self.tokens_revoked_before(),
            secrets: Vec::new(),
            claims: self.profile.claims.claims.clone(),
            org_claims: tokenmint_core::CustomClaims::default(),
            public_keys: self.public_keys().to_vec(),
            revision: self.revision,
        }
    }
}

fn pack_tokens(minute: u32, count: u32) -> u64 {
    (u64::from(minute) << 32) | u64::from(count)
}

fn unpack_tokens(packed: u64) -> (u32, u32) {
    // The halves of a u64: neither conversion can fail.
    (u32::try_from(packed >> 32).unwrap_or(0), u32::try_from(packed & 0xFFFF_FFFF).unwrap_or(0))
}

/// The values cached credentials share, one of each: profiles, permissions with their
/// audiences, and token claims. Values no entry holds any more are dropped whenever the tables
/// have doubled since the last sweep, so the tables stay within twice what is in use.
#[derive(Default)]
struct Shared {
    profiles: HashSet<Arc<Profile>>,
    grants: HashMap<GrantsKey, Arc<Grants>>,
    claims: HashSet<ByJson>,
    swept_at: usize,
}

/// Permissions as text (their canonical form), and audiences.
type GrantsKey = (Box<str>, Box<[String]>);

fn shared() -> std::sync::MutexGuard<'static, Shared> {
    static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();
    SHARED.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn len(&self) -> usize {
        self.profiles.len() + self.grants.len() + self.claims.len()
    }

    fn intern(
        &mut self,
        org: String,
        permissions: Permissions,
        audiences: Vec<String>,
        claims: tokenmint_core::CustomClaims,
    ) -> Arc<Profile> {
        if self.len() >= (self.swept_at * 2).max(1024) {
            // Profiles first: theirs are references to the parts.
            self.profiles.retain(|v| Arc::strong_count(v) > 1);
            self.grants.retain(|_, v| Arc::strong_count(v) > 1);
            self.claims.retain(|v| Arc::strong_count(&v.0) > 1);
            self.swept_at = self.len();
        }
        let audiences: Box<[String]> =
            audiences.into_iter().map(|a| a.into_boxed_str().into_string()).collect();
        let key = (permissions.to_string().into_boxed_str(), audiences);
        let grants = match self.grants.get(&key) {
            Some(g) => g.clone(),
            None => {
                let g = Arc::new(Grants {
                    all_scopes: permissions.scopes().join(" ").into_boxed_str(),
                    permissions,
                    audiences: key.1.clone(),
                });
                self.grants.insert(key, g.clone());
                g
            }
        };
        let json = claims.json_members();
        let claims = match self.claims.get(json.as_str()) {
            Some(c) => c.0.clone(),
            None => {
                let c = Arc::new(Claims { claims, json: json.into_boxed_str() });
                self.claims.insert(ByJson(c.clone()));
                c
            }
        };
        let profile = Profile { org: Slug::new(&org), grants, claims };
        match self.profiles.get(&profile) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(profile);
                self.profiles.insert(p.clone());
                p
            }
        }
    }
}

type Entry = Option<Arc<CachedCredential>>;

/// How many client ids looked up and not found are remembered, apart from the credentials:
/// ids anyone can make up must neither push real credentials out of the cache (those an
/// instance serves through a database outage) nor take more than a little memory.
const UNKNOWN_IDS: usize = 10_000;

/// The entry holding a client's limit state ([`CachedCredential::limit_root`]) while no
/// cached entry does, and the network the client was last used from.
#[derive(Debug)]
struct Unheld {
    holder: Arc<CachedCredential>,
    network: u64,
}

/// Entries are keyed by a hash of the client id under a key random to the process, not by the
/// id: an entry holds its id already, and a second copy as the key would cost a heap block per
/// entry. Two ids whose hashes collide (by chance only: the key is secret) take turns in one
/// slot, each lookup of the other one a miss; never does one id get the other's entry.
pub struct CredentialCache {
    entries: Cache<u64, Arc<CachedCredential>>,
    /// Client ids looked up and not found, by the same key; see [`UNKNOWN_IDS`].
    unknown: Cache<u64, Arc<str>>,
    /// The limits' states (and last networks) of clients whose entries an invalidation dropped,
    /// or whose entry is being made, by key: the next entry of the client takes its cell from
    /// here, or from the entry it replaces. Entries are made, inserted and dropped under this
    /// lock, so that every entry of one client has the same cell.
    unheld: Mutex<HashMap<u64, Unheld>>,
    hasher: std::hash::RandomState,
    keep_names: bool,
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache").field("len", &self.entries.len()).finish_non_exhaustive()
    }
}

impl CredentialCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Cache::new(capacity.max(16)),
            unknown: Cache::new(UNKNOWN_IDS.min(capacity.max(16))),
            unheld: Mutex::default(),
            hasher: std::hash::RandomState::new(),
            keep_names: true,
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache whose entries leave out the credentials' names, which only the token hook's
    /// request reads: for a server without a hook.
    pub fn without_names(self) -> Self {
        Self { keep_names: false, ..self }
    }

    /// The entry of a credential just read from the store, as this cache keeps them, with the
    /// limit's state of the client's entries before it (a new one for a client never seen).
    pub fn entry(&self, credential: Credential) -> Arc<CachedCredential> {
        let entry = CachedCredential::compact(credential, self.keep_names);
        let key = self.key(&entry.client_id());
        let mut unheld = self.unheld();
        let before = match self.entries.peek(&key) {
            Some(c) if c.client_id() == entry.client_id() => {
                Some((c.limit_root(), c.network.load(Ordering::Acquire)))
            }
            _ => unheld.get(&key).map(|u| (u.holder.clone(), u.network)),
        };
        match before {
            Some((holder, network)) => Arc::new(entry.taking_over(holder, network)),
            None => {
                // The client's first entry: its cell is the client's. Until it is cached, an
                // entry made meanwhile for the same client finds it here.
                let entry = Arc::new(entry);
                unheld.insert(key, Unheld { holder: entry.clone(), network: 0 });
                entry
            }
        }
    }

    fn unheld(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Unheld>> {
        self.unheld.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets the limits' states that no entry holds and that are as good as new at `now`
    /// (the instant [`tokenmint_http::Limits::now`] reads), and gives back the table's room.
    pub fn sweep_idle_limits(&self, now: std::time::Duration) {
        let mut unheld = self.unheld();
        unheld.retain(|_, u| {
            Arc::strong_count(&u.holder) > 1
                || !tokenmint_http::ratelimit::cell_is_idle(&u.holder.limit, now)
        });
        unheld.shrink_to_fit();
    }

    /// How many limits' states no cached entry holds.
    pub fn unheld_limits(&self) -> usize {
        self.unheld().len()
    }

    /// The credential with this id, from memory when possible.
    pub async fn get(&self, store: &dyn Store, client_id: &str) -> Result<Entry, StoreError> {
        if let Some(e) = self.lookup(client_id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let loaded = store.get_credential(client_id).await?.map(|c| self.entry(c));
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.insert(client_id, loaded.clone());
        }
        Ok(loaded)
    }

    /// A cached entry, counted as a hit, or `None` (not counted) when the store must be asked.
    pub fn cached(&self, client_id: &str) -> Option<Entry> {
        let e = self.lookup(client_id)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(e)
    }

    /// Replaces an entry with what was just read from the store, unless an invalidation raced
    /// the read (`epoch` is [`Self::epoch`] from before it).
    pub fn refresh(&self, client_id: &str, loaded: Entry, epoch: u64) {
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.insert(client_id, loaded);
        }
    }

    /// The invalidation counter, read before a store read that [`Self::refresh`] will store.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Returns a cached entry without touching the store.
    pub fn peek(&self, client_id: &str) -> Option<Entry> {
        self.lookup(client_id)
    }

    fn key(&self, client_id: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, client_id)
    }

    /// The entry of exactly this id, if cached.
    fn lookup(&self, client_id: &str) -> Option<Entry> {
        let key = self.key(client_id);
        if let Some(c) = self.entries.get(&key)
            && c.client_id() == client_id
        {
            return Some(Some(c));
        }
        match self.unknown.get(&key) {
            Some(id) if &*id == client_id => Some(None),
            _ => None,
        }
    }

    fn insert(&self, client_id: &str, entry: Entry) {
        let key = self.key(client_id);
        let mut unheld = self.unheld();
        match entry {
            Some(c) => {
                // Held by the cached entry from now on.
                if unheld.get(&key).is_some_and(|u| Arc::ptr_eq(&u.holder, &c.limit_root())) {
                    unheld.remove(&key);
                }
                self.unknown.remove(&key);
                self.entries.insert(key, c);
            }
            None => {
                // One slot per key: a credential no longer found leaves the cache.
                self.entries.remove(&key);
                self.unknown.insert(key, Arc::from(client_id));
            }
        }
    }

    pub fn invalidate(&self, client_id: &str) {
        let key = self.key(client_id);
        let mut unheld = self.unheld();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.unknown.remove(&key);
        if let Some((_, c)) = self.entries.remove(&key) {
            let network = c.network.load(Ordering::Acquire);
            unheld.insert(key, Unheld { holder: c.limit_root(), network });
        }
    }

    pub fn clear(&self) {
        let mut unheld = self.unheld();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.unknown.clear();
        for (key, c) in self.entries.drain() {
            let network = c.network.load(Ordering::Acquire);
            unheld.insert(key, Unheld { holder: c.limit_root(), network });
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenmint_core::ClientId;
    use tokenmint_core::StoredSecret;

    /// Client ids anyone can make up are remembered apart, a bounded number of them: however
    /// many are looked up, the credentials stay cached and the unknown ids take at most
    /// [`UNKNOWN_IDS`] entries.
    #[test]
    fn made_up_client_ids_push_no_credential_out_and_are_bounded() {
        let cache = CredentialCache::new(100);
        let ids: Vec<String> = (0..50).map(|i| format!("tmc_{i:024}")).collect();
        for id in &ids {
            let entry = cache.entry(credential(id, "acme"));
            cache.insert(id, Some(entry));
        }
        for i in 0..(UNKNOWN_IDS * 3) {
            cache.insert(&format!("tmc_unknown{i}"), None);
        }
        for id in &ids {
            assert!(matches!(cache.peek(id), Some(Some(_))), "{id} was pushed out");
        }
        assert!(cache.unknown.len() <= UNKNOWN_IDS.min(100), "{}", cache.unknown.len());
        // An id once unknown and then found is a credential again, and the other way round.
        let last = format!("tmc_unknown{}", UNKNOWN_IDS * 3 - 1);
        assert!(matches!(cache.peek(&last), Some(None)));
        let id = &ids[0];
        cache.insert(id, None);
        assert!(matches!(cache.peek(id), Some(None)), "a credential no longer found");
        let entry = cache.entry(credential(id, "acme"));
        cache.insert(id, Some(entry));
        assert!(matches!(cache.peek(id), Some(Some(_))));
    }

    fn credential(id: &str, org: &str) -> Credential {
        Credential {
            client_id: ClientId::parse(id).unwrap(),
            name: "HR sync".into(),
            org: org.into(),
            environment: Environment::Sandbox,
            permissions: Permissions::from_stored(&["billing:write"]),
            audiences: vec!["https://api.example.com".into()],
            token_lifetime_secs: 600,
            rate_limit_per_minute: Some(5),
            status: CredentialStatus::Active,
            expires_at: Some(1000),
            created_at: 1,
            updated_at: 2,
            last_used_at: None,
            tokens_revoked_before: None,
            secrets: vec![
                StoredSecret {
                    id: "sec_0123456789abcdef".into(),
                    hash: SecretHash([1; 32]),
                    hint: "tms_a…".into(),
                    created_at: 1,
                    expires_at: Some(500),
                    last_used_at: None,
                },
                StoredSecret {
                    id: "a-secret-id-longer-than-any-generated-one".into(),
                    hash: SecretHash([2; 32]),
                    hint: "tms_b…".into(),
                    created_at: 1,
                    expires_at: None,
                    last_used_at: None,
                },
            ],
            claims: tokenmint_core::CustomClaims::default(),
            org_claims: tokenmint_core::CustomClaims::default(),
            public_keys: Vec::new(),
            revision: 3,
        }
    }

    #[test]
    fn an_entry_authenticates_and_grants_as_its_credential_does() {
        let c = credential("tmc_a", "acme");
        let e = CachedCredential::new(c.clone());
        for (hash, now) in
            [([1; 32], 499), ([1; 32], 500), ([2; 32], 999), ([3; 32], 1), ([2; 32], 1000)]
        {
            let h = SecretHash(hash);
            assert_eq!(
                e.authenticate(&h, now).map(String::from),
                c.authenticate(&h, now).map(|s| s.id.clone())
            );
        }
        assert_eq!(e.all_scopes(), "billing:read billing:write");
        assert_eq!(e.permissions(), &c.permissions);
        assert_eq!(e.audiences(), c.audiences.as_slice());
        assert_eq!(e.revision(), 3);
        let view = e.to_credential();
        assert_eq!((view.name.as_str(), view.org.as_str()), ("HR sync", "acme"));
    }

    #[test]
    fn generated_ids_are_held_in_place_and_authenticate_as_the_credential_does() {
        let mut c = credential("tmc_0123456789abcdefghijKLMN", "acme");
        c.secrets.truncate(1);
        c.rate_limit_per_minute = None;
        c.expires_at = None;
        let e = CachedCredential::new(c.clone());
        assert_eq!(e.client_id(), "tmc_0123456789abcdefghijKLMN");
        assert!(e.rare.as_ref().is_some_and(|r| r.client_id.is_none() && r.secret_ids.is_empty()));
        for (hash, now) in [([1; 32], 499), ([1; 32], 500), ([2; 32], 1)] {
            let h = SecretHash(hash);
            assert_eq!(
                e.authenticate(&h, now).map(String::from),
                c.authenticate(&h, now).map(|s| s.id.clone())
            );
        }
        assert_eq!(e.authenticate(&SecretHash([1; 32]), 1).unwrap(), "sec_0123456789abcdef");
        assert_eq!((e.rate_limit_per_minute(), e.expires_at()), (None, None));
        assert_eq!(e.tokens_revoked_before(), None);
        let ending = CredentialCache::new(16).without_names().entry(c.clone());
        assert!(ending.rare.is_some(), "a secret's end is rare: kept beside the entry");
        c.secrets[0].expires_at = None;
        let without_name = CredentialCache::new(16).without_names().entry(c);
        assert!(without_name.rare.is_none(), "nothing rare: one block");
    }

    #[test]
    fn what_an_entry_keeps_reads_back_as_the_credential_had_it() {
        let mut c = credential("tmc_a", "acme");
        c.tokens_revoked_before = Some(RevocationCutoff::at_micros(1_700_000_000_123_456));
        c.rate_limit_per_minute = Some(0);
        c.claims = tokenmint_core::CustomClaims::from_stored(r#"{"tier":"gold"}"#).unwrap();
        c.public_keys = tokenmint_core::assertion::keys_from_stored("[]").unwrap();
        let e = CachedCredential::new(c.clone());
        assert_eq!(e.tokens_revoked_before(), c.tokens_revoked_before);
        assert_eq!(e.rate_limit_per_minute(), Some(0), "a limit of 0 turns it off: kept");
        assert_eq!((e.expires_at(), e.environment(), e.org()), (Some(1000), c.environment, "acme"));
        assert_eq!((e.claims(), e.claims_json()), (&c.claims, r#""tier":"gold""#));
        assert_eq!(e.revokes_token(1_700_000_000, "x"), c.revokes_token(1_700_000_000, "x"));
        let view = e.to_credential();
        assert_eq!(view.client_id, c.client_id);
        assert_eq!(view.tokens_revoked_before, c.tokens_revoked_before);
        assert_eq!(view.rate_limit_per_minute, Some(0));
        c.rate_limit_per_minute = Some(u32::MAX);
        assert!(CachedCredential::new(c).rate_limit_per_minute().is_some(), "never the default");
    }

    #[test]
    fn an_entry_is_one_block_of_at_most_136_bytes() {
        // 136 B and the `Arc`'s two counts make a 152-byte allocation, which the allocator
        // serves from a smaller size class than 192; a field more would make it larger for
        // every credential in use.
        assert!(std::mem::size_of::<CachedCredential>() <= 136);
    }

    #[test]
    fn ids_of_the_generated_form_are_packed_and_read_back_as_they_were() {
        let all = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for window in 0..=all.len() - 24 {
            let id = format!("tmc_{}", &all[window..window + 24]);
            let packed = PackedClientId::new(&id, CLIENT_ID_PREFIX).unwrap();
            assert_eq!(packed.get(CLIENT_ID_PREFIX).unwrap(), id.as_str());
            let secret = format!("sec_{}", &all[window..window + 16]);
            let packed = PackedSecretId::new(&secret, SECRET_ID_PREFIX).unwrap();
            assert_eq!(packed.get(SECRET_ID_PREFIX).unwrap(), secret.as_str());
        }
        for generated in 0..100 {
            let id = tokenmint_core::ClientId::generate();
            let secret = tokenmint_core::ids::random_id(SECRET_ID_PREFIX, 16);
            let c = Packed::<18>::new(id.as_str(), CLIENT_ID_PREFIX);
            let s = Packed::<12>::new(&secret, SECRET_ID_PREFIX);
            assert_eq!(
                c.and_then(|c| c.get(CLIENT_ID_PREFIX)).unwrap(),
                id.as_str(),
                "{generated}"
            );
            assert_eq!(s.and_then(|s| s.get(SECRET_ID_PREFIX)).unwrap(), secret.as_str());
        }
        // Any other form is not packed: another prefix, length or character.
        for odd in [
            "tmc_0123456789abcdefghijKLM",
            "tmc_0123456789abcdefghijKLMNO",
            "tmx_0123456789abcdefghijKLMN",
            "tmc_0123456789abcdefghij-LMN",
            "tmc_0123456789abcdefghij_LMN",
            "0123456789abcdefghijKLMNOPQR",
        ] {
            assert!(PackedClientId::new(odd, CLIENT_ID_PREFIX).is_none(), "{odd}");
        }
        assert!(PackedSecretId::new("sec_0123456789abcde~", SECRET_ID_PREFIX).is_none());
        assert_eq!(PackedClientId::NONE.get(CLIENT_ID_PREFIX), None);
    }

    #[test]
    fn ids_of_another_form_are_kept_as_text_beside_the_entry() {
        let mut c = credential("tmc_0123456789abcdefghij-LMN", "acme");
        c.secrets[0].id = "sec_0123456789abcde-".into();
        c.secrets[1].id = "sec_0123456789abcdeZ".into();
        let e = CachedCredential::new(c.clone());
        assert_eq!(e.client_id(), "tmc_0123456789abcdefghij-LMN");
        let rare = e.rare.as_ref().unwrap();
        assert_eq!(rare.client_id.as_deref(), Some("tmc_0123456789abcdefghij-LMN"));
        assert_eq!(rare.secret_ids.len(), 1);
        assert_eq!(&*rare.secret_ids[0], "sec_0123456789abcde-");
        assert_eq!(e.authenticate(&SecretHash([1; 32]), 1).unwrap(), "sec_0123456789abcde-");
        assert_eq!(e.authenticate(&SecretHash([2; 32]), 1).unwrap(), "sec_0123456789abcdeZ");
        assert_eq!(e.to_credential().client_id, c.client_id);
        let cache = CredentialCache::new(16);
        cache.refresh("tmc_0123456789abcdefghij-LMN", Some(Arc::new(e)), cache.epoch());
        assert!(cache.peek("tmc_0123456789abcdefghij-LMN").is_some_and(|e| e.is_some()));
        assert!(cache.peek("tmc_0123456789abcdefghij-LMO").is_none());
    }

    #[test]
    fn a_last_used_time_the_entry_cannot_hold_is_handed_back() {
        let e = CachedCredential::new(credential("tmc_a", "acme"));
        for at in [0, -1, i64::from(u32::MAX) + 1, UnixTime::MIN, UnixTime::MAX] {
            assert!(!e.note_secret("sec_0123456789abcdef", at), "{at}");
        }
        assert_eq!(e.take_last_used().count(), 0);
        assert!(e.note_secret("sec_0123456789abcdef", i64::from(u32::MAX)));
        assert!(e.note_secret("sec_0123456789abcdef", 1));
        let used: Vec<_> = e.take_last_used().map(|(s, at)| (String::from(s), at)).collect();
        assert_eq!(used, [("sec_0123456789abcdef".to_owned(), i64::from(u32::MAX))]);
    }

    #[test]
    fn the_name_the_token_hook_is_told_is_kept_unless_the_cache_keeps_no_names() {
        let c = credential("tmc_a", "acme");
        let named = CredentialCache::new(16).entry(c.clone()).to_credential();
        assert_eq!(named.name, "HR sync");
        let unnamed = CredentialCache::new(16).without_names().entry(c).to_credential();
        assert_eq!((unnamed.name.as_str(), unnamed.org.as_str()), ("", "acme"));
    }

    #[test]
    fn credentials_alike_share_their_org_and_grants() {
        let a = CachedCredential::new(credential("tmc_a", "acme"));
        let b = CachedCredential::new(credential("tmc_b", "acme"));
        assert!(Arc::ptr_eq(&a.profile, &b.profile), "one block for the three");
        assert!(Arc::ptr_eq(&a.profile.grants, &b.profile.grants));
        let mut other = credential("tmc_c", "acme");
        other.audiences.push("https://other.example.com".into());
        let other = CachedCredential::new(other);
        assert!(!Arc::ptr_eq(&a.profile.grants, &other.profile.grants));
        assert!(!Arc::ptr_eq(&a.profile, &other.profile));
        assert_eq!(other.org(), "acme");
        let elsewhere = CachedCredential::new(credential("tmc_d", "globex"));
        assert!(!Arc::ptr_eq(&a.profile, &elsewhere.profile), "another organization");
        assert!(Arc::ptr_eq(&a.profile.grants, &elsewhere.profile.grants));
        assert_eq!(elsewhere.org(), "globex");
    }

    /// A profile of its own (an organization with one credential) is one block of 64 bytes
    /// with its slug in place, for every slug a short one; a slug of any length reads back.
    #[test]
    fn a_profile_is_one_block_with_its_slug_in_place() {
        assert!(size_of::<Profile>() + 2 * size_of::<usize>() <= 56, "{}", size_of::<Profile>());
        for len in 1..=63 {
            let slug: String = "abcdefghij-".chars().cycle().take(len).collect();
            let held = Slug::new(&slug);
            assert_eq!(held.as_str(), slug);
            assert_eq!(matches!(held, Slug::Short(..)), len <= SHORT_SLUG, "{len}");
            let c = CachedCredential::new(credential("tmc_a", &slug));
            assert_eq!(c.org(), slug);
        }
    }

    #[test]
    fn a_lookup_answers_only_for_the_id_it_asks_for() {
        let cache = CredentialCache::new(100);
        let a = Arc::new(CachedCredential::new(credential("tmc_a", "acme")));
        cache.refresh("tmc_a", Some(a), cache.epoch());
        cache.refresh("tmc_unknown", None, cache.epoch());
        assert_eq!(cache.peek("tmc_a").unwrap().unwrap().client_id(), "tmc_a");
        assert!(cache.peek("tmc_unknown").unwrap().is_none(), "cached as unknown");
        assert!(cache.peek("tmc_b").is_none(), "not cached at all");
        cache.invalidate("tmc_a");
        assert!(cache.peek("tmc_a").is_none());
        assert_eq!(cache.len(), 0, "credentials are counted, not unknown ids");
        assert!(cache.peek("tmc_unknown").unwrap().is_none(), "still known as unknown");
    }
    /// A limit of 3 per minute, checked at `secs` (seconds since an arbitrary origin).
    fn check(entry: &CachedCredential, secs: u64) -> bool {
        matches!(
            tokenmint_http::ratelimit::check_cell(
                entry.limit_cell(),
                3,
                std::time::Duration::from_secs(60),
                std::time::Duration::from_secs(1_765_000_000 + secs),
            ),
            tokenmint_http::Decision::Allowed { .. }
        )
    }

    #[test]
    fn a_limit_spent_stays_spent_when_the_credential_changes() {
        let cache = CredentialCache::new(100);
        let before = cache.entry(credential("tmc_a", "acme"));
        cache.refresh("tmc_a", Some(before.clone()), cache.epoch());
        assert!((0..3).all(|_| check(&before, 0)));
        assert!(!check(&before, 0), "spent");
        // Edited elsewhere: invalidated, then read again on the next request.
        cache.invalidate("tmc_a");
        assert_eq!(cache.unheld_limits(), 1, "kept while no entry holds it");
        let mut edited = credential("tmc_a", "acme");
        edited.rate_limit_per_minute = Some(1000);
        edited.revision = 4;
        let after = cache.entry(edited);
        cache.refresh("tmc_a", Some(after.clone()), cache.epoch());
        assert_eq!(cache.unheld_limits(), 0, "held by the new entry");
        assert!(before.limit_holder().is_none() && after.limit_holder().is_some(), "beside it");
        assert!(!check(&after, 0), "an edit hands out no fresh burst");
        // A request still holding the old entry counts against the same state.
        assert!(check(&after, 20));
        assert!(!check(&before, 20));
        // Replaced in place (a re-read after a refusal), the state carries over too.
        let reread = cache.entry(credential("tmc_a", "acme"));
        cache.refresh("tmc_a", Some(reread.clone()), cache.epoch());
        assert!(!check(&reread, 20));
        assert!(check(&reread, 40));
        // Another client has its own.
        assert!(check(&cache.entry(credential("tmc_b", "acme")), 40));
    }

    #[test]
    fn entries_made_at_once_for_one_client_share_its_limit() {
        let cache = CredentialCache::new(100);
        // Two requests that both missed: each makes an entry before either is inserted; a
        // third is made after an invalidation raced the reads and neither was inserted.
        let a = cache.entry(credential("tmc_a", "acme"));
        let b = cache.entry(credential("tmc_a", "acme"));
        let epoch = cache.epoch();
        cache.invalidate("tmc_a");
        cache.refresh("tmc_a", Some(a.clone()), epoch);
        cache.refresh("tmc_a", Some(b.clone()), epoch);
        assert!(cache.peek("tmc_a").is_none(), "the raced reads were not cached");
        let c = cache.entry(credential("tmc_a", "acme"));
        assert!(check(&a, 0) && check(&b, 0) && check(&c, 0));
        assert!(!check(&a, 0) && !check(&c, 0), "one limit for the three");
    }

    #[test]
    fn only_limits_as_good_as_new_and_held_by_no_entry_are_forgotten() {
        let cache = CredentialCache::new(100);
        let spent = cache.entry(credential("tmc_a", "acme"));
        cache.refresh("tmc_a", Some(spent.clone()), cache.epoch());
        assert!(check(&spent, 0));
        let idle = cache.entry(credential("tmc_b", "acme"));
        cache.refresh("tmc_b", Some(idle.clone()), cache.epoch());
        cache.invalidate("tmc_a");
        cache.invalidate("tmc_b");
        drop((spent, idle));
        let at = |secs: u64| std::time::Duration::from_secs(1_765_000_000 + secs);
        cache.sweep_idle_limits(at(1));
        assert_eq!(cache.unheld_limits(), 1, "the spent one is kept until it refills");
        let again = cache.entry(credential("tmc_a", "acme"));
        assert!(check(&again, 1) && check(&again, 1), "two left of the burst of three");
        assert!(!check(&again, 1));
        cache.sweep_idle_limits(at(3600));
        assert_eq!(cache.unheld_limits(), 1, "kept while an entry holds it");
        drop(again);
        cache.sweep_idle_limits(at(3600));
        assert_eq!(cache.unheld_limits(), 0);
    }

    #[test]
    fn usage_is_taken_once_and_a_later_minute_pushes_the_earlier_out() {
        let e = CachedCredential::new(credential("tmc_a", "acme"));
        assert_eq!(e.note_token(120), None);
        assert_eq!(e.note_token(150), None);
        assert!(e.note_secret("a-secret-id-longer-than-any-generated-one", 150));
        assert!(e.note_secret("sec_0123456789abcdef", 130));
        assert!(e.note_secret("sec_0123456789abcdef", 125), "an earlier time changes nothing");
        assert!(!e.note_secret("key:thumbprint", 150), "not a secret of the entry");
        assert_eq!(e.note_token(185), Some((120, 2)));
        assert_eq!(e.take_tokens(), Some((180, 1)));
        assert_eq!(e.take_tokens(), None);
        let used: Vec<_> = e.take_last_used().map(|(s, at)| (String::from(s), at)).collect();
        assert_eq!(
            used,
            [
                ("sec_0123456789abcdef".to_owned(), 130),
                ("a-secret-id-longer-than-any-generated-one".to_owned(), 150)
            ]
        );
        assert_eq!(e.take_last_used().count(), 0);
        assert_eq!(e.note_token(-1), Some((-60, 1)), "a minute it cannot hold is handed back");
        assert!(e.list() && !e.list(), "listed once");
        e.unlist();
        assert!(e.list());
    }
}
