//! Password hashing on a fixed set of threads, on memory given back after each hash.
//!
//! An Argon2id hash (the `argon2` crate's defaults, as OWASP recommends) works through 19 MiB.
//! Allocated by the crate for each hash, that memory was not given back: with glibc every
//! sign-in on a long-lived thread left its 19 MiB behind (six sequential sign-ins took an
//! instance from 30 to 149 MB), and parallel ones on tokio's blocking pool multiplied it (32
//! at once: 800 MB, for good). Anyone can send sign-ins (an unknown email is hashed too, so
//! that it takes as long as a wrong password). Here at most one hash runs per thread of a small
//! pool (one per core, at most two), on memory mapped for the hash and given back after it
//! ([`MAPPED_BLOCKS`]): passwords take at most two blocks while hashes run and none after,
//! whatever the traffic; a flood of sign-ins costs time, not memory.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, LazyLock, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads running the jobs given to it, in order, one at a time per thread.
#[derive(Debug)]
pub struct Workers {
    jobs: Sender<Job>,
}

impl Workers {
    /// Starts `threads` threads (at least one).
    pub fn start(name: &str, threads: usize) -> Self {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let spawned =
                std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || run(&queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Self { jobs }
    }

    /// Runs `work` on one of the threads once one is free; `None` if no thread runs.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.send(job).ok()?;
        result.await.ok()
    }
}

fn run(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only to take the next job, not while it runs.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// The process's password-hashing threads: one per core, at most two.
pub fn passwords() -> &'static Workers {
    static WORKERS: LazyLock<Workers> = LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Workers::start("tokenmint-password", cores.min(2))
    });
    &WORKERS
}

/// Argon2's memory is asked for with room for at least this many blocks (33 MiB, more than the
/// largest threshold above which glibc maps an allocation on its own, 32 MiB on 64-bit), so it
/// is mapped for the hash and unmapped after it, given back to the system rather than kept in
/// an arena. Only the blocks a hash uses are ever touched, so the room costs no memory.
const MAPPED_BLOCKS: usize = 33 * 1024;

/// Runs Argon2 with memory of its own, given back when it is done.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let mut memory: Vec<Block> = Vec::with_capacity(params.block_count().max(MAPPED_BLOCKS));
    memory.resize(params.block_count(), Block::default());
    argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..])
}

/// A new Argon2id hash of `password` with a fresh random salt and the recommended
/// parameters, as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &[u8]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    tokenmint_core::crypto::fill_random(&mut salt);
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon2, &params, password, &salt, &mut out).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash` (compared in constant time); a malformed
/// hash, or one of another algorithm, never matches.
pub fn verify(hash: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if argon2_into(&argon2, &params, password, salt, &mut out).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// However many hashes are asked for at once, no more run at a time than there are
    /// threads, and every one is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_jobs_run_at_once_than_there_are_threads() {
        let workers = Arc::new(Workers::start("test-workers", 2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut asked = Vec::new();
        for i in 0..40 {
            let (workers, running, most) = (workers.clone(), running.clone(), most.clone());
            asked.push(tokio::spawn(async move {
                workers
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Long enough for jobs on free threads to overlap if they could.
                        std::thread::sleep(Duration::from_millis(2));
                        running.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                    .await
            }));
        }
        let mut answers = Vec::new();
        for a in asked {
            answers.push(a.await.unwrap().unwrap());
        }
        answers.sort_unstable();
        assert_eq!(answers, (0..40).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 2, "{} ran at once", most.load(Ordering::SeqCst));
        assert_eq!(most.load(Ordering::SeqCst), 2, "both threads were used");
    }

    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Hashes made here verify with the `argon2` crate's own verifier and the other way round
    /// (stored hashes keep working), and hashing again and again on one thread keeps no memory:
    /// ten hashes grew a thread by 195 MB with the crate allocating for each.
    #[test]
    fn hashes_match_the_crates_and_repeated_hashing_keeps_no_memory() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash(b"correct horse battery").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse battery", &parsed).is_ok());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::default().hash_password(b"correct horse battery", &salt).unwrap();
        assert!(verify(&theirs.to_string(), b"correct horse battery"));
        assert!(!verify(&theirs.to_string(), b"correct horse batterY"));
        assert!(!verify("$argon2id$v=19$m=19456,t=2,p=1$bm90$", b"x"), "no hash part");
        assert!(!verify("not a hash", b"x"));
        // Measured in a thread of its own, as the pool's threads run.
        std::thread::spawn(|| {
            verify(&hash(b"warm up").unwrap(), b"warm up");
            let before = resident_kib();
            for i in 0..10 {
                let h = hash(format!("password {i}").as_bytes()).unwrap();
                assert!(verify(&h, format!("password {i}").as_bytes()));
            }
            // Other tests of this process hash at the same time, each on a thread of its own
            // (a block each): a bound of four blocks, against the ten or more a block per hash
            // took.
            let grown = resident_kib().saturating_sub(before);
            assert!(grown < 4 * 19_500, "twenty hashes grew the process by {grown} KiB");
        })
        .join()
        .unwrap();
    }
}
