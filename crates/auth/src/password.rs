//! argon2id password hashing with the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Each hash takes about 19 MiB and tens of milliseconds of one core, so callers run it
//! off async worker threads and bound how many run at once. A thread that hashes often
//! calls [`keep_memory_on_this_thread`] to reuse its 19 MiB between hashes instead of
//! allocating and faulting in fresh pages each time.

use std::cell::RefCell;
use std::fmt;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use finetune_core::user::MAX_PASSWORD_BYTES;
use subtle::ConstantTimeEq;

use crate::error::AuthError;

thread_local! {
    /// The argon2 memory this thread reuses; `None` on threads that did not ask to keep it.
    static THREAD_MEMORY: RefCell<Option<Vec<Block>>> = const { RefCell::new(None) };
}

/// Keeps this thread's argon2 memory (19 MiB with the default parameters) between
/// hashes, until the thread ends. Hashing threads call it once at start.
pub fn keep_memory_on_this_thread() {
    THREAD_MEMORY.with(|kept| {
        kept.borrow_mut().get_or_insert_with(Vec::new);
    });
}

/// Runs `work` with `blocks` argon2 blocks: this thread's kept memory when it keeps
/// memory and `blocks` is at most the default parameters' count, else a fresh
/// allocation that is freed afterwards.
fn with_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    let default_blocks = default_params().map_or(0, |params| params.block_count());
    THREAD_MEMORY.with(|kept| match kept.borrow_mut().as_mut() {
        Some(memory) if blocks <= default_blocks => {
            if memory.len() < blocks {
                memory.resize(blocks, Block::default());
            }
            work(&mut memory[..blocks])
        }
        _ => work(&mut vec![Block::default(); blocks]),
    })
}

fn default_params() -> Result<Params, argon2::Error> {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
}

/// Memory cost in KiB.
pub const MEMORY_KIB: u32 = 19_456;
/// Number of passes.
pub const ITERATIONS: u32 = 2;
/// Degree of parallelism.
pub const PARALLELISM: u32 = 1;

/// The maximum memory cost, in KiB, of a stored hash that [`Passwords::verify`] computes:
/// 128 MiB, more than six times [`MEMORY_KIB`], so hashes made with stronger settings
/// still verify. A stored hash above any of these limits is a mismatch, so a row written
/// outside the API cannot make a login allocate gigabytes or hold a hashing thread for
/// minutes.
pub const MAX_STORED_MEMORY_KIB: u32 = 131_072;
/// The maximum number of passes of a stored hash that is computed.
pub const MAX_STORED_ITERATIONS: u32 = 10;
/// The maximum degree of parallelism of a stored hash that is computed.
pub const MAX_STORED_PARALLELISM: u32 = 8;

/// Hashes and verifies passwords; holds a dummy hash so that a login for an unknown or
/// inactive user costs the same time as a wrong password.
#[derive(Clone)]
pub struct Passwords {
    argon2: Argon2<'static>,
    dummy_hash: String,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// Creates the hasher with the OWASP parameters and computes the dummy hash (one
    /// full hash, so call this once at start-up).
    pub fn new() -> Result<Self, AuthError> {
        Self::with_params(MEMORY_KIB, ITERATIONS, PARALLELISM)
    }

    /// Creates a hasher with other parameters; meant for benchmarks.
    pub fn with_params(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, AuthError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|error| AuthError::Hashing(error.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut passwords = Self { argon2, dummy_hash: String::new() };
        let mut filler = [0u8; 24];
        crate::tokens::getrandom_fill(&mut filler)?;
        passwords.dummy_hash = passwords.hash(&base64_filler(&filler))?;
        Ok(passwords)
    }

    /// Hashes `password` with a fresh 128-bit salt; returns the PHC string.
    pub fn hash(&self, password: &str) -> Result<String, AuthError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::Hashing("password longer than the maximum".into()));
        }
        let hashing_error = |error: &dyn fmt::Display| AuthError::Hashing(error.to_string());
        let mut salt = [0u8; 16];
        crate::tokens::getrandom_fill(&mut salt)?;
        let params = self.argon2.params();
        let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        with_memory(params.block_count(), |memory| {
            self.argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut output, memory)
        })
        .map_err(|error| hashing_error(&error))?;

        let salt = SaltString::encode_b64(&salt).map_err(|error| hashing_error(&error))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|error| hashing_error(&error))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(|error| hashing_error(&error))?),
        };
        Ok(phc.to_string())
    }

    /// Returns true when `password` matches `stored_hash`. A malformed stored hash or an
    /// oversized password is a mismatch. The comparison is constant-time.
    pub fn verify(&self, password: &str, stored_hash: &str) -> bool {
        if password.len() > MAX_PASSWORD_BYTES {
            // Still spend the time, so the length does not show in the response time.
            self.verify_dummy(password);
            return false;
        }
        let Ok(parsed) = PasswordHash::new(stored_hash) else {
            self.verify_dummy(password);
            return false;
        };
        if !within_limits(&parsed) {
            tracing::warn!(
                params = %parsed.params,
                "a stored password hash exceeds the cost limits; it never matches"
            );
            self.verify_dummy(password);
            return false;
        }
        matches_phc(password.as_bytes(), &parsed)
    }

    /// Spends the time of one verification against a hash no password matches.
    pub fn verify_dummy(&self, password: &str) {
        let capped = &password.as_bytes()[..password.len().min(MAX_PASSWORD_BYTES)];
        if let Ok(parsed) = PasswordHash::new(&self.dummy_hash) {
            let _ = matches_phc(capped, &parsed);
        }
    }
}

/// Returns true when the cost parameters of `phc` are within the `MAX_STORED_*` limits.
/// Parameters that do not parse pass here, because [`matches_phc`] treats them as a
/// mismatch.
fn within_limits(phc: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(phc) else {
        return true;
    };
    params.m_cost() <= MAX_STORED_MEMORY_KIB
        && params.t_cost() <= MAX_STORED_ITERATIONS
        && params.p_cost() <= MAX_STORED_PARALLELISM
}

/// Recomputes `phc` for `password` with the algorithm, version, parameters and salt the
/// PHC string names, and compares the outputs in constant time. Anything unreadable in
/// the string is a mismatch.
fn matches_phc(password: &[u8], phc: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm) else {
        return false;
    };
    let version = match phc.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(phc) else {
        return false;
    };
    let mut salt_buffer = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };

    let argon2 = Argon2::new(algorithm, version, params);
    let mut output = vec![0u8; expected.len()];
    let computed = with_memory(argon2.params().block_count(), |memory| {
        argon2.hash_password_into_with_memory(password, salt, &mut output, memory)
    });
    computed.is_ok() && bool::from(output.as_slice().ct_eq(expected.as_bytes()))
}

fn base64_filler(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passwords() -> Passwords {
        Passwords::new().unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn hash_uses_owasp_argon2id_parameters() {
        let hash = passwords().hash("correct horse battery staple").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    }

    #[test]
    fn verify_accepts_right_and_rejects_wrong() {
        let passwords = passwords();
        let hash = passwords.hash("correct horse battery staple").unwrap_or_default();
        assert!(passwords.verify("correct horse battery staple", &hash));
        assert!(!passwords.verify("correct horse battery stapler", &hash));
    }

    #[test]
    fn hashes_match_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

        let passwords = passwords();
        let ours = passwords.hash("correct horse battery staple").unwrap_or_default();
        let parsed = PasswordHash::new(&ours).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(Argon2::default().verify_password(b"correct horse battery staple", &parsed).is_ok());

        let params = Params::new(8192, 1, 1, None).unwrap_or_else(|e| unreachable!("{e}"));
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(
                b"another password",
                &SaltString::encode_b64(b"sixteen byte slt").unwrap_or_else(|e| unreachable!("{e}")),
            )
            .map(|hash| hash.to_string())
            .unwrap_or_default();
        assert!(passwords.verify("another password", &theirs));
        assert!(!passwords.verify("another passwore", &theirs));
    }

    #[test]
    fn kept_memory_serves_every_size() {
        let result = std::thread::spawn(|| {
            keep_memory_on_this_thread();
            let passwords = passwords();
            let small = Passwords::with_params(8192, 1, 1).unwrap_or_else(|e| unreachable!("{e}"));
            let large = Passwords::with_params(MEMORY_KIB * 2, 1, 1).unwrap_or_else(|e| unreachable!("{e}"));
            let mut checks = Vec::new();
            for hasher in [&passwords, &small, &large, &passwords] {
                let hash = hasher.hash("correct horse battery staple").unwrap_or_default();
                checks.push(passwords.verify("correct horse battery staple", &hash));
                checks.push(!passwords.verify("correct horse battery stapler", &hash));
            }
            let kept = THREAD_MEMORY.with(|kept| kept.borrow().as_ref().map(Vec::len));
            (checks, kept)
        })
        .join()
        .unwrap_or_else(|_| unreachable!("the hashing thread panicked"));
        assert!(result.0.iter().all(|passed| *passed), "{:?}", result.0);
        let default_blocks = default_params().map(|params| params.block_count()).ok();
        assert_eq!(result.1, default_blocks);
    }

    #[test]
    fn verify_rejects_malformed_hash() {
        assert!(!passwords().verify("whatever-password", "not-a-phc-string"));
    }
}
