//! Which memcached client to build the store on: the async meta-protocol client, or the
//! blocking classic client behind `spawn_blocking`. Runs both against a private memcached
//! on one single-threaded runtime (what an actix worker has), 32 concurrent tasks, and
//! prints operations per second.
//!
//! `cargo run --release -p session-memcached --example client_choice`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement program

use std::time::Instant;

use memcache::exp::{AsyncMetaClient, Get, Set, Ttl};
use session_testkit::MemcachedServer;

const TASKS: usize = 32;
const PER_TASK: usize = 1_000;

fn main() {
    let server = MemcachedServer::start().unwrap();
    let address = server.address();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let value = vec![b'x'; 200];

    let (async_rate, blocking_rate) = runtime.block_on(async {
        let client = AsyncMetaClient::connect(address.as_str()).await.unwrap();
        client.run(Set::new("bench", &value).ttl(Ttl::secs(600))).await.unwrap();
        let classic = memcache::Client::with_pool_size(format!("memcache://{address}"), 32).unwrap();

        let mut rates = (0.0, 0.0);
        for round in 0..3 {
            let started = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        for _ in 0..PER_TASK {
                            assert!(client.run(Get::new("bench")).await.unwrap().hit());
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let async_rate = (TASKS * PER_TASK) as f64 / started.elapsed().as_secs_f64();

            let started = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let classic = classic.clone();
                    tokio::spawn(async move {
                        for _ in 0..PER_TASK {
                            let classic = classic.clone();
                            let got = tokio::task::spawn_blocking(move || classic.get::<Vec<u8>>("bench"))
                                .await
                                .unwrap()
                                .unwrap();
                            assert!(got.is_some());
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let blocking_rate = (TASKS * PER_TASK) as f64 / started.elapsed().as_secs_f64();
            println!("round {round}: async {async_rate:.0} get/s, blocking+spawn_blocking {blocking_rate:.0} get/s");
            rates = (async_rate, blocking_rate);
        }
        rates
    });
    println!(
        "async meta client: {async_rate:.0} get/s; classic client via spawn_blocking: {blocking_rate:.0} get/s; ratio {:.2}",
        async_rate / blocking_rate
    );
}
