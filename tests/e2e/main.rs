//! End-to-end tests of the `finetune` binary.

mod keys;
mod keys_support;
