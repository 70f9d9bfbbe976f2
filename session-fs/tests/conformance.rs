//! `FileStore` passes the store conformance suite, each check in a directory of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use common::scratch_dir;

mod inline_io {
    use super::*;

    session_core::store_conformance_tests!(async {
        session_fs::FileStore::open(scratch_dir("conformance")).unwrap()
    });
}

mod offloaded_io {
    use super::*;

    session_core::store_conformance_tests!(async {
        session_fs::FileStore::builder(scratch_dir("conformance"))
            .offload_io(true)
            .open()
            .unwrap()
    });
}

#[test]
fn operation_futures_are_small() {
    for offload_io in [false, true] {
        let store = session_fs::FileStore::builder(scratch_dir("conformance"))
            .offload_io(offload_io)
            .open()
            .unwrap();
        session_testkit::assert_small_futures(&store);
    }
}
