//! `FileStore` passes the store conformance suite, each check in a directory of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

fn scratch_dir() -> std::path::PathBuf {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-fs-conformance");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(base)
        .unwrap()
        .keep()
}

mod inline_io {
    use super::*;

    session_core::store_conformance_tests!(async {
        session_fs::FileStore::new(scratch_dir()).unwrap()
    });
}

mod offloaded_io {
    use super::*;

    session_core::store_conformance_tests!(async {
        session_fs::FileStore::builder(scratch_dir())
            .offload_io(true)
            .build()
            .unwrap()
    });
}

#[test]
fn operation_futures_are_small() {
    for offload_io in [false, true] {
        let store = session_fs::FileStore::builder(scratch_dir())
            .offload_io(offload_io)
            .build()
            .unwrap();
        session_core::test_suite::assert_small_futures(&store);
    }
}
