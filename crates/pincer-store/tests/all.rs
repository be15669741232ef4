#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store conformance suite: the same tests against every backend — SQLite always, Postgres
//! with the `postgres` feature and `PINCER_TEST_POSTGRES` set (`.ci/run` starts a throwaway
//! cluster; under `CI=true` a missing database fails the suite instead of skipping it). A
//! behaviour difference between backends is a bug.

mod suite;
