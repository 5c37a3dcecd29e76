//! Stored PHC strings whose argon2 parameters exceed what this service ever writes.
//!
//! `Passwords::verify` recomputes the hash with the cost parameters read from the stored
//! string, so without limits a row with an absurd memory cost would make the verifier
//! allocate that much (4 TiB aborts the process). Such a hash must be a plain mismatch.
#![cfg(feature = "passwords")]

use finetune_auth::password::Passwords;

/// A syntactically valid argon2id PHC string with `m` = u32::MAX KiB (4 TiB).
const HUGE_MEMORY_HASH: &str =
    "$argon2id$v=19$m=4294967295,t=1,p=1$c2l4dGVlbiBieXRlIHNsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The same with a pass count that would hold a hashing thread for hours.
const HUGE_ITERATIONS_HASH: &str =
    "$argon2id$v=19$m=8,t=4294967295,p=1$c2l4dGVlbiBieXRlIHNsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[test]
fn huge_memory_cost_is_mismatch() {
    let passwords = Passwords::with_params(8, 1, 1).unwrap_or_else(|e| unreachable!("{e}"));
    assert!(!passwords.verify("a-long-user-password", HUGE_MEMORY_HASH));
}

#[test]
fn huge_pass_count_is_mismatch() {
    let passwords = Passwords::with_params(8, 1, 1).unwrap_or_else(|e| unreachable!("{e}"));
    assert!(!passwords.verify("a-long-user-password", HUGE_ITERATIONS_HASH));
}

#[test]
fn hash_within_limits_still_verifies() {
    let strong = Passwords::with_params(65_536, 3, 1).unwrap_or_else(|e| unreachable!("{e}"));
    let hash = strong.hash("a-long-user-password").unwrap_or_default();
    let passwords = Passwords::with_params(8, 1, 1).unwrap_or_else(|e| unreachable!("{e}"));
    assert!(passwords.verify("a-long-user-password", &hash));
}
