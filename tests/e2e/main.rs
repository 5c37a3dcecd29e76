//! End-to-end tests of the `finetune` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code fails by panicking")]

mod edge;
mod edge_support;
