//! End-to-end tests of the `finetune` binary.
