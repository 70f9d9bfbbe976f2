//! `MemcachedStore` passes the store conformance suite on one memcached (the one in
//! `SESSION_TEST_MEMCACHED_URL`, which `cargo xtask test` starts) and on two at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::OnceLock;

use session_memcached::test_util::MemcachedServer;
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

/// Two private servers, shared by the checks of this process.
fn pair() -> &'static (MemcachedServer, MemcachedServer) {
    static PAIR: OnceLock<(MemcachedServer, MemcachedServer)> = OnceLock::new();
    PAIR.get_or_init(|| {
        (
            MemcachedServer::start().unwrap(),
            MemcachedServer::start().unwrap(),
        )
    })
}

mod two_servers {
    use super::*;

    session_core::store_conformance_tests!(async {
        let (a, b) = pair();
        let url = format!("memcache://{},{}", a.address(), b.address());
        MemcachedStore::builder(url)
            .max_item_size(ITEM_LIMIT)
            .connect()
            .await
            .unwrap()
    });
}
