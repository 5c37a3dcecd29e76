//! argon2id password hashing with the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Each hash takes about 19 MiB and tens of milliseconds of one core, so callers run it
//! off async worker threads and bound how many run at once.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use finetune_core::user::MAX_PASSWORD_BYTES;

use crate::error::AuthError;

/// Memory cost in KiB.
pub const MEMORY_KIB: u32 = 19_456;
/// Number of passes.
pub const ITERATIONS: u32 = 2;
/// Degree of parallelism.
pub const PARALLELISM: u32 = 1;

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
        let mut salt = [0u8; 16];
        crate::tokens::getrandom_fill(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(|error| AuthError::Hashing(error.to_string()))?;
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| AuthError::Hashing(error.to_string()))
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
        self.argon2.verify_password(password.as_bytes(), &parsed).is_ok()
    }

    /// Spends the time of one verification against a hash no password matches.
    pub fn verify_dummy(&self, password: &str) {
        let capped = &password.as_bytes()[..password.len().min(MAX_PASSWORD_BYTES)];
        if let Ok(parsed) = PasswordHash::new(&self.dummy_hash) {
            let _ = self.argon2.verify_password(capped, &parsed);
        }
    }
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
    fn verify_rejects_malformed_hash() {
        assert!(!passwords().verify("whatever-password", "not-a-phc-string"));
    }
}
