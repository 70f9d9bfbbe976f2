//! `MemoryStore` passes the store conformance suite.

session_core::store_conformance_tests!(async { session_core::MemoryStore::new() });
