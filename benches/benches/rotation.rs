//! One refresh rotation: the write transaction that marks a token used and issues its
//! successor, on SQLite and (with `BENCH_POSTGRES_URL`) on PostgreSQL.
#![allow(missing_docs, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use finetune_auth::AuthError;
use finetune_auth::refresh::{self, Rotation};
use finetune_benches::{BenchDatabase, now};
use finetune_core::UserId;
use finetune_core::db::write_transaction;

const LIFETIME: Duration = Duration::from_secs(86_400);

fn bench_backend(c: &mut Criterion, label: &str, database: &BenchDatabase) {
    let mut connection = database.pool.get().expect("a pooled connection");
    let first = refresh::issue(&mut connection, UserId(1), None, now(), LIFETIME).expect("issue works");
    let mut current = first.token.expose().to_owned();

    c.bench_function(&format!("refresh_rotation/{label}"), |b| {
        b.iter(|| {
            let rotation = write_transaction(&mut connection, |connection| {
                refresh::rotate(connection, &current, now(), LIFETIME)
            });
            match rotation {
                Ok(Rotation::Rotated { successor, .. }) => current = successor.token.expose().to_owned(),
                other => panic!("rotation failed: {other:?}"),
            }
            Ok::<(), AuthError>(())
        })
    });
}

fn rotation(c: &mut Criterion) {
    let sqlite = BenchDatabase::sqlite().expect("a SQLite database");
    bench_backend(c, "sqlite", &sqlite);
    match BenchDatabase::postgres() {
        Ok(Some(postgres)) => bench_backend(c, "postgres", &postgres),
        Ok(None) => eprintln!("refresh_rotation/postgres skipped: set BENCH_POSTGRES_URL"),
        Err(error) => panic!("PostgreSQL set-up failed: {error}"),
    }
}

criterion_group!(benches, rotation);
criterion_main!(benches);
