//! `FileStore` passes the store conformance suite, each check in a directory of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use common::scratch_dir;
use session_fs::IoThread;

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
            .io_thread(session_fs::IoThread::BlockingPool)
            .open()
            .unwrap()
    });
}

#[test]
fn operation_futures_are_small() {
    for io in [IoThread::Caller, IoThread::BlockingPool] {
        let store = session_fs::FileStore::builder(scratch_dir("conformance"))
            .io_thread(io)
            .open()
            .unwrap();
        session_testkit::assert_small_futures(&store);
    }
}
