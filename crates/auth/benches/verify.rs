//! Access-token verifications per second on one core, for HS256, EdDSA and ES256.
//!
//! Run with `cargo bench -p finetune-auth --bench verify`; add
//! `-- --measurement-time 3 --warm-up-time 1` for a short run. Criterion runs each
//! verification on the calling thread, so its throughput line is the rate of one core.

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use finetune_auth::keys::{Algorithm, KeyRing, SigningKey};
use finetune_auth::{AccessTokens, AuthError};
use finetune_core::UserId;

fn ring(algorithm: Algorithm) -> Result<KeyRing, AuthError> {
    let signing = match algorithm {
        Algorithm::Hs256 => SigningKey::hs256(b"benchmark-secret-benchmark-secret-benchmark")?,
        other => SigningKey::generate(other)?,
    };
    // A ring after one rotation, so the lookup by `kid` searches two keys.
    let previous = match algorithm {
        Algorithm::Hs256 => SigningKey::hs256(b"previous-secret-previous-secret-previous")?,
        other => SigningKey::generate(other)?,
    };
    Ok(KeyRing::new(signing, [previous.verifying_key()]))
}

fn verify(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));

    for algorithm in [Algorithm::Hs256, Algorithm::EdDsa, Algorithm::Es256] {
        let prepared = ring(algorithm).and_then(|ring| {
            let tokens = AccessTokens::new(ring, "finetune", "finetune-erp", Duration::from_secs(300));
            let issued = tokens.issue(UserId(7), &["system_admin".into()], Utc::now())?;
            Ok((tokens, issued))
        });
        let (tokens, issued) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                eprintln!("cannot prepare the {algorithm} benchmark: {error}");
                continue;
            }
        };
        let token = issued.token.expose().to_owned();
        let now = Utc::now();
        if let Err(error) = tokens.verify(&token, now) {
            eprintln!("the {algorithm} token does not verify: {error}");
            continue;
        }

        group.bench_function(algorithm.as_str(), |bencher| {
            bencher.iter(|| tokens.verify(black_box(&token), now).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
