//! `MongoStore`: sessions in MongoDB with a TTL index, on the `mongodb` crate.
//!
//! Not implemented yet: this crate reserves the name and its place in the workspace. It
//! will implement `session_core::Store` and pass `session_core`'s conformance suite.
