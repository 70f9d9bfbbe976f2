//! `Codec::decode` on a stored MessagePack record (one that starts with a map marker): no
//! panic, no unbounded allocation, and what decodes is written back unchanged by either
//! codec (by JSON only where its nesting limit allows).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::Codec;

fuzz_target!(|data: &[u8]| {
    // Other first bytes belong to the JSON target, or to no codec.
    if session_fuzz::codec_of(data) == Some(Codec::MessagePack) {
        session_fuzz::decode_and_round_trip(data);
    }
});
