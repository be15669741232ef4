//! End-to-end tests: the real `pincer` binary against the test kit's fake model server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
