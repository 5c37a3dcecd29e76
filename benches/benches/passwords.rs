//! argon2id with the OWASP parameters (m = 19456 KiB, t = 2, p = 1): one hash and one
//! verification, on one core. The thread keeps its argon2 memory between hashes, as the
//! server's hashing threads do; `hash with fresh memory` allocates it for each hash.
#![allow(missing_docs, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use finetune_auth::password::{Passwords, keep_memory_on_this_thread};

fn passwords(c: &mut Criterion) {
    let passwords = Passwords::new().expect("argon2 parameters are valid");
    let hash = passwords.hash("correct horse battery staple").expect("hashing works");

    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20);
    group.bench_function("hash with fresh memory", |b| {
        b.iter(|| passwords.hash("correct horse battery staple"))
    });
    keep_memory_on_this_thread();
    group.bench_function("hash", |b| b.iter(|| passwords.hash("correct horse battery staple")));
    group.bench_function("verify", |b| b.iter(|| passwords.verify("correct horse battery staple", &hash)));
    group.finish();
}

criterion_group!(benches, passwords);
criterion_main!(benches);
