//! Integration tests for the provider clients against the test kit's real loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
