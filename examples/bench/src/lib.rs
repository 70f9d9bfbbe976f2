//! The benchmark's servers: the bench app (this library with sessions), the baseline that
//! does the same store work by hand, and the store benchmark without HTTP. `cargo xtask
//! bench` runs them; they live here so that the tests can drive them without a socket.

pub mod app;
pub mod baseline;
pub mod store_bench;
