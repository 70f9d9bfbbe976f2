//! `MemcachedStore` passes the store conformance suite on one memcached (the one in
//! `SESSION_TEST_MEMCACHED_URL`) and on two at once (`SESSION_TEST_MEMCACHED_PAIR_URL`),
//! all started by `cargo xtask test memcached`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use session_memcached::MemcachedStore;

/// The servers xtask starts allow 2 MiB items (`-I 2m`): the suite stores 1 MiB sessions.
const ITEM_LIMIT: usize = 2 * 1024 * 1024;

fn url() -> String {
    std::env::var("SESSION_TEST_MEMCACHED_URL")
        .expect("SESSION_TEST_MEMCACHED_URL is not set: run `cargo xtask test memcached`")
}

mod one_server {
    use super::*;

    session_core::store_conformance_tests!(async {
        MemcachedStore::builder(url())
            .max_item_size(ITEM_LIMIT)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("no memcached at {}: {e:?}", url()))
    });
}

fn pair_url() -> String {
    std::env::var("SESSION_TEST_MEMCACHED_PAIR_URL")
        .expect("SESSION_TEST_MEMCACHED_PAIR_URL is not set: run `cargo xtask test memcached`")
}

mod two_servers {
    use super::*;

    session_core::store_conformance_tests!(async {
        MemcachedStore::builder(pair_url())
            .max_item_size(ITEM_LIMIT)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("no memcached pair at {}: {e:?}", pair_url()))
    });
}
