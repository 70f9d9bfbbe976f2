//! `Codec::decode` on a stored JSON record (one that starts with `{`): no panic, no
//! unbounded allocation, and what decodes is written back unchanged by either codec.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{Codec, CodecError};

fuzz_target!(|data: &[u8]| {
    match session_fuzz::codec_of(data) {
        Some(Codec::Json) => session_fuzz::decode_and_round_trip(data),
        // The MessagePack target's.
        Some(_) => {}
        None => assert!(matches!(Codec::decode(data), Err(CodecError::Unrecognised))),
    }
});
