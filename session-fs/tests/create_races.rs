//! A new session's file is renamed into place without the key's lock, and the stripe
//! remembers it afterwards: a removal or write by another thread in between must win.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::sync::Barrier;

use session_core::store::{Revision, Store, StoreError};
use session_fs::FileStore;

use common::{hour, key, scratch_dir};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn a_session_deleted_as_it_is_created_stays_deleted() {
    let dir = scratch_dir("create-races");
    let store = FileStore::open(&dir).unwrap();
    let (here, there) = (runtime(), runtime());
    // An update of many sessions makes the store the last writer of every stripe, so that
    // it trusts the revisions it remembers.
    for _ in 0..1000 {
        let other = key();
        let first = here.block_on(store.create(&other, b"x", hour())).unwrap();
        here.block_on(store.update(&other, b"y", hour(), first))
            .unwrap();
    }
    let mut revived = 0;
    let rounds = 2000;
    for _ in 0..rounds {
        let key = key();
        let barrier = Barrier::new(2);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                barrier.wait();
                // Ends the new session as soon as it is there, as a revocation would.
                loop {
                    match there.block_on(store.delete_if_unchanged(&key, Revision::FIRST)) {
                        Ok(()) => break,
                        Err(StoreError::UnknownId) => {}
                        Err(other) => panic!("{other:?}"),
                    }
                }
            });
            barrier.wait();
            here.block_on(store.create(&key, b"v1", hour())).unwrap();
        });
        assert!(!dir.join(key.as_str()).exists());
        match here.block_on(store.update(&key, b"zombie", hour(), Revision::FIRST)) {
            Err(StoreError::UnknownId) => {}
            Ok(_) => {
                revived += 1;
                here.block_on(store.delete(&key)).unwrap();
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(
        revived, 0,
        "{revived} of {rounds} sessions deleted while they were created came back by an update"
    );
}
