//! What the fuzz targets share: the codec round-trip check, a way to run a store's
//! futures without a runtime, and the input reader the targets split their bytes with.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use session_core::{Codec, Record};

/// Reads a fuzz input from the front: fixed-size fields first, the rest as a tail.
/// Missing bytes read as zeros, so every input means something.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&first, rest)) => {
                self.0 = rest;
                first
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes: fewer if the input ends.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Runs a future that never waits: a `FileStore` with `IoThread::Caller` does its I/O on
/// the calling thread, so its futures are ready on the first poll. Polls on if one is not,
/// rather than assume it.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}

/// The decoding half of `Codec::decode` for one codec: what a stored record that begins
/// with `bytes[0]` is decoded as.
pub fn codec_of(bytes: &[u8]) -> Option<Codec> {
    match bytes.first()? {
        b'{' => Some(Codec::Json),
        0x80..=0x8f | 0xde | 0xdf => Some(Codec::MessagePack),
        _ => None,
    }
}

/// serde_json refuses input nested this deep or deeper; a record decoded from MessagePack
/// may be deeper (its limit is higher), so only shallower ones must survive a switch of
/// codec.
const JSON_DEPTH_LIMIT: usize = 128;

/// Decodes `bytes` as a stored record and, when that succeeds, checks that what was
/// decoded is what is written back: the record's own codec encodes it and decodes the
/// same record again, and so does the other codec (the configured codec may have changed
/// since the record was written) where JSON's nesting limit allows. Floats included: the
/// workspace builds serde_json with `float_roundtrip`, so they read back bit for bit.
pub fn decode_and_round_trip(bytes: &[u8]) {
    let Ok(record) = Codec::decode(bytes) else {
        return;
    };
    let Some(own) = codec_of(bytes) else {
        panic!("a record decoded from bytes that name no codec");
    };
    let other = match own {
        Codec::Json => Codec::MessagePack,
        _ => Codec::Json,
    };
    let json = match Codec::Json.encode(&record) {
        Ok(json) => json,
        Err(error) => panic!("a decoded record does not encode as JSON: {error}"),
    };
    check_round_trip(&record, own);
    if JsonShape::of(&json).depth < JSON_DEPTH_LIMIT {
        check_round_trip(&record, other);
    }
}

fn check_round_trip(record: &Record, codec: Codec) {
    let bytes = match codec.encode(record) {
        Ok(bytes) => bytes,
        Err(error) => panic!("a decoded record does not encode as {codec:?}: {error} ({error:?})"),
    };
    let again = match Codec::decode(&bytes) {
        Ok(again) => again,
        Err(error) => panic!("a record {codec:?} encoded does not decode: {error} ({error:?})"),
    };
    assert!(again == *record, "{codec:?} round trip changed the record");
}

/// What matters of a JSON text's shape here.
struct JsonShape {
    /// The deepest nesting of arrays and objects.
    depth: usize,
}

impl JsonShape {
    fn of(json: &[u8]) -> Self {
        let (mut depth, mut deepest) = (0usize, 0usize);
        let (mut in_string, mut escaped) = (false, false);
        for &byte in json {
            if in_string {
                match (escaped, byte) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Self { depth: deepest }
    }
}
