//! End-to-end tests: each test starts the `finetune` binary on its own database and
//! talks HTTP to it, on SQLite and, when `TEST_POSTGRES_URL` is set, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code fails by panicking")]

mod cookies;
mod db;
mod harness;
mod http;
mod jwt;

mod admin;
mod audit;
mod audit_log;
mod concurrency;
mod edge;
mod edge_support;
mod errors;
mod forged_tokens;
mod keys;
mod keys_support;
mod login;
mod logout;
mod password;
mod races;
mod refresh;
mod tokens;
mod user_cache;
