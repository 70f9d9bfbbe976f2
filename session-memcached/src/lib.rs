//! `MemcachedStore`: sessions in memcached, one or many servers, on the `memcache` crate.
//!
//! Not implemented yet: this crate reserves the name and its place in the workspace. It
//! will implement `session_core::Store` and pass `session_core`'s conformance suite.
