//! `MemoryStore` passes the store conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

session_core::store_conformance_tests!(async { session_core::MemoryStore::new() });

#[test]
fn operation_futures_are_small() {
    session_testkit::assert_small_futures(&session_core::MemoryStore::new());
}
