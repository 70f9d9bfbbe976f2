//! The per-request work of session-core, without I/O: ids, signing, verification, the
//! codecs, and a whole load-modify-save cycle against `MemoryStore`.
//!
//! `cargo bench -p session-core` (or `cargo xtask bench`, which also runs the HTTP
//! benchmarks).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use session_core::adapter::{CookieUpdate, SessionManager, SessionState};
use session_core::{Codec, Config, IdLength, Keyring, MemoryStore, SessionId};

fn ten_key_session() -> SessionState {
    let mut state = SessionState::new(true);
    for i in 0..10 {
        state
            .insert(
                format!("key{i}"),
                format!("a value of moderate length, number {i}"),
            )
            .unwrap();
    }
    state
}

fn ids_and_signing(c: &mut Criterion) {
    let keyring = Keyring::new([[7u8; 32]]).unwrap();
    let id = SessionId::generate(IdLength::default()).unwrap();
    let cookie = keyring.sign("session", &id);
    c.bench_function("id/generate", |b| {
        b.iter(|| SessionId::generate(IdLength::default()).unwrap())
    });
    c.bench_function("keyring/sign", |b| {
        b.iter(|| keyring.sign(black_box("session"), black_box(&id)))
    });
    c.bench_function("keyring/verify", |b| {
        b.iter(|| {
            keyring
                .verify(
                    black_box("session"),
                    black_box(&cookie),
                    IdLength::default(),
                )
                .unwrap()
        })
    });
}

fn codecs(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
        .build()
        .unwrap();
    let sessions = SessionManager::new(MemoryStore::new(), config);
    // A stored record, through the public API: save a 10-key session, read it back.
    let state = ten_key_session();
    let CookieUpdate::Set(header) = runtime.block_on(sessions.save(state)).unwrap() else {
        panic!()
    };
    let pair = header.split(';').next().unwrap().to_owned();
    let state = runtime
        .block_on(sessions.load(sessions.verify([pair.as_str()])))
        .unwrap();
    let record = state.record();
    for codec in [Codec::Json, Codec::MessagePack] {
        let bytes = codec.encode(record).unwrap();
        c.bench_function(&format!("codec/{codec:?}/encode 10 keys"), |b| {
            b.iter(|| codec.encode(black_box(record)).unwrap())
        });
        c.bench_function(&format!("codec/{codec:?}/decode 10 keys"), |b| {
            b.iter(|| Codec::decode(black_box(&bytes)).unwrap())
        });
    }
}

fn cycle(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
        .build()
        .unwrap();
    let sessions = SessionManager::new(MemoryStore::new(), config);
    let CookieUpdate::Set(header) = runtime.block_on(sessions.save(ten_key_session())).unwrap()
    else {
        panic!()
    };
    let header = header.split(';').next().unwrap().to_owned();
    c.bench_function("cycle/load-modify-save 10 keys (memory)", |b| {
        let mut n = 0u64;
        b.iter(|| {
            runtime.block_on(async {
                let mut state = sessions
                    .load(sessions.verify([header.as_str()]))
                    .await
                    .unwrap();
                n += 1;
                state.insert("counter", n).unwrap();
                sessions.save(state).await.unwrap()
            })
        })
    });
    c.bench_function("cycle/verify+load+read, no write (memory)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let state = sessions
                    .load(sessions.verify([header.as_str()]))
                    .await
                    .unwrap();
                let _ = state.get::<u64>("counter").unwrap();
                sessions.save(state).await.unwrap()
            })
        })
    });
}

criterion_group!(benches, ids_and_signing, codecs, cycle);
criterion_main!(benches);
