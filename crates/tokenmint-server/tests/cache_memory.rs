//! The memory cost of the credential cache, measured as the growth of this process's resident
//! memory: keep this the only test of its binary, so nothing else allocates meanwhile. (A
//! counting allocator would need `unsafe`, which the workspace forbids.)
//!
//! 100,000 credentials shaped as `credentials create` makes them (a name, one of 1,000
//! organizations, sandbox or production, two permissions, one audience, one secret, no
//! claims; every tenth with a second secret in its rotation overlap, every fiftieth with
//! claims of its own) are read the way the store reads them and cached the way the token
//! endpoint caches them. The growth of resident memory, cache table, keys and the allocator's
//! own overhead (a header per block, rounding, fragmentation) included, divided by the number
//! of credentials, is the per-entry cost.
//!
//! Measured resident memory per cached credential, cache table and key included:
//! - before the compact entry: 1,140 B, dominated by the whole `Credential` each entry kept
//!   (name, org, every secret with its id and hint, the permissions' area names, the audience
//!   list: a heap block each) next to its own all-scopes string and a `String` key;
//! - with a first compact entry: 549 B, in three blocks: the entry (224 B), its client id's
//!   text (48 B) and its secrets (80 B);
//! - with the entry in one block: 292 B. The client id and the first secret (hash, end, id)
//!   are held in place, as generated ids have a fixed length; optional numbers are sentinels;
//!   the token claims are shared like the org and grants; what few credentials have (a second
//!   secret in a rotation's overlap, keys, the name a token hook is told) is in one further
//!   block. A heap profile (valgrind massif) of this test counts per credential: the entry,
//!   184 B (a block of 192 B); the further block and its secrets, 14 B (one in ten
//!   credentials); the cache's table (quick_cache's slab and index with their growth slack),
//!   59 B; the claims one in fifty has of its own, about 20 B. The rest is the allocator's
//!   header per block;
//! - with the token path's state in the entry too (the limit's cell, the last network, usage not
//!   yet written: atomics in the same 192-byte block, in place of three tables beside the
//!   cache that cost about 160 B per credential in use): 305 B. The entry's organization,
//!   grants and claims became one shared block (8 bytes in the entry instead of 32), which
//!   here, with 1,000 organizations and 48 grant sets, makes about 8,000 shared blocks; the
//!   rare block (one in ten) grew by a secret's end and its last use;
//! - with the entry at 136 bytes instead of 168 (a block of 152 B instead of 184): 283 B. The
//!   ids of the generated form are held without their prefixes, six bits a base62 character;
//!   the pointer that an edited credential's later entries keep to its first one (for the
//!   limit's state) is in the rare block; a secret's last use not yet written is 32 bits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tokenmint_core::credential::{Credential, CredentialStatus, StoredSecret};
use tokenmint_core::{ClientId, CustomClaims, Environment, Permissions, SecretHash};
use tokenmint_server::cache::CredentialCache;

/// The resident memory of this process, in bytes (`VmRSS`).
fn resident() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .expect("a VmRSS line");
    kb * 1024
}

const CREDENTIALS: usize = 100_000;
/// The capacity the server gives its cache (`app.rs`).
const CAPACITY: usize = 200_000;

/// Resident bytes per cached credential that the test allows: what the compact entry measured
/// (292 B, see the module's doc) and a tenth more for allocator and page noise.
const BUDGET_BYTES: i64 = 321;

/// A stored text as the store hands it out: a `String` of exactly its length.
fn text(s: &str) -> String {
    s.to_owned()
}

/// The `i`th credential, read as `tokenmint_store`'s SQL store reads a row (and its secrets).
fn credential(i: usize) -> Credential {
    const AREAS: [&str; 4] = ["eligibility", "billing", "members", "claims"];
    const AUDIENCES: [&str; 4] = [
        "https://api.example.com/eligibility",
        "https://api.example.com/billing",
        "https://members.example.com",
        "https://claims.example.org/v2",
    ];
    let first = AREAS[i % 4];
    let second = AREAS[(i / 4 + 1 + i % 4) % 4];
    let level = if i.is_multiple_of(3) { "write" } else { "read" };
    let permissions_text = if first == second {
        format!("{first}:{level}")
    } else {
        format!("{first}:{level} {second}:read")
    };
    let permissions: Vec<&str> = permissions_text.split(' ').filter(|s| !s.is_empty()).collect();
    let audiences: Vec<String> =
        serde_json::from_str(&serde_json::to_string(&[AUDIENCES[i % 4]]).unwrap()).unwrap();
    let claims = if i.is_multiple_of(50) {
        CustomClaims::from_stored(&format!("{{\"tier\":\"gold\",\"partner_no\":{i}}}")).unwrap()
    } else {
        CustomClaims::from_stored("{}").unwrap()
    };
    let mut c = Credential {
        client_id: ClientId::parse(&format!("tmc_{i:0>24}")).unwrap(),
        name: text(&format!("HR sync for partner {i}")),
        org: text(&format!("partner-org-{:04}", i % 1000)),
        environment: if i.is_multiple_of(2) {
            Environment::Production
        } else {
            Environment::Sandbox
        },
        permissions: Permissions::from_stored(&permissions),
        audiences,
        token_lifetime_secs: 3600,
        rate_limit_per_minute: None,
        status: CredentialStatus::Active,
        expires_at: None,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        last_used_at: None,
        tokens_revoked_before: None,
        secrets: Vec::new(),
        claims,
        org_claims: CustomClaims::default(),
        public_keys: tokenmint_core::assertion::keys_from_stored("[]").unwrap(),
        revision: 1,
    };
    let secrets = if i.is_multiple_of(10) { 2 } else { 1 };
    for s in 0..secrets {
        let mut hash = [0u8; 32];
        for (k, b) in hash.iter_mut().enumerate() {
            *b = u8::try_from((i * 31 + s * 7 + k) % 251).unwrap();
        }
        c.secrets.push(StoredSecret {
            id: text(&format!("sec_{i:0>12}{s:0>4}")),
            hash: SecretHash(hash),
            hint: text("tms_Ab3x…"),
            created_at: 1_700_000_000,
            expires_at: (secrets == 2 && s == 0).then_some(1_700_086_400),
            last_used_at: None,
        });
    }
    c
}

#[test]
fn a_cached_credential_costs_at_most_its_budget_in_resident_memory() {
    // Warm up what the first entries would otherwise pay for (the allocator's arena).
    drop(std::hint::black_box((0..1000).map(credential).collect::<Vec<_>>()));
    let before = resident();
    // As a server without a token hook has it, as the benchmark runs it.
    let cache = CredentialCache::new(CAPACITY).without_names();
    for i in 0..CREDENTIALS {
        let c = credential(i);
        let id = c.client_id.as_str().to_owned();
        cache.refresh(&id, Some(cache.entry(c)), cache.epoch());
    }
    let per_entry = (resident() - before) / i64::try_from(CREDENTIALS).unwrap();
    assert_eq!(cache.len(), CREDENTIALS, "every credential is cached");
    println!("resident memory per cached credential: {per_entry} B");
    assert!(
        per_entry <= BUDGET_BYTES,
        "a cached credential costs {per_entry} B of resident memory, more than the {BUDGET_BYTES} B budget"
    );
    // Still the credentials they were.
    let sample = cache.peek("tmc_000000000000000000000050").unwrap().unwrap();
    assert_eq!(sample.claims().len(), 2);
    assert!(sample.claims_json().contains("\"tier\":\"gold\""));
}
