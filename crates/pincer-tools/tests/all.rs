#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests of the tools against a real filesystem.

mod suite;
