//! The export writers: encoding one chunk of 2,000 audit entries as CSV (with formula
//! neutralisation) and as JSON lines.
#![allow(missing_docs, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use finetune_activity::export::{CHUNK_ROWS, Format, encode};
use finetune_activity::query::Entry;

fn entries() -> Vec<Entry> {
    (0..CHUNK_ROWS)
        .map(|n| Entry {
            id: n + 1,
            occurred_at: Utc::now(),
            actor_id: Some(n % 1000),
            actor_username: Some(if n % 7 == 0 { format!("=seed-{n}") } else { format!("seed-user-{n}") }),
            action: "auth.login".into(),
            outcome: "success".into(),
            target_type: Some("user".into()),
            target_id: Some((n % 1000).to_string()),
            ip: Some("198.51.100.7".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) \"quoted\", comma".into()),
            request_id: Some(uuid::Uuid::new_v4().to_string()),
            details: serde_json::json!({"seeded": true, "n": n}),
        })
        .collect()
}

fn writers(c: &mut Criterion) {
    let chunk = entries();
    let mut group = c.benchmark_group("export_chunk");
    group.throughput(Throughput::Elements(chunk.len() as u64));
    group.bench_function("csv", |b| b.iter(|| encode(&chunk, Format::Csv).expect("encoding works")));
    group.bench_function("jsonl", |b| b.iter(|| encode(&chunk, Format::JsonLines).expect("encoding works")));
    group.finish();
}

criterion_group!(benches, writers);
criterion_main!(benches);
