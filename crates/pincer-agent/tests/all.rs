//! Integration tests for the run loop against the test kit's fake model server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
