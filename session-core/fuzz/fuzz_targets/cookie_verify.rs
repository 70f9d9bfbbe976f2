//! `Keyring::verify` on a cookie value: nothing but the exact value a key signed, for the
//! cookie name it was signed for, verifies; every id's canonical spelling parses. Values
//! are bytes, as they come in a request.
//!
//! Input: byte 0 picks the id length (16 to 64 bytes), byte 1 the mode (bit 0) and the
//! cookie name's length (the other bits). Mode 0 verifies the rest, after the name, as a
//! cookie value under each keyring. Mode 1 reads the id's bytes after the name, signs that
//! id, applies the rest as edits (3 bytes each: operation, position, byte) and checks that
//! only the unedited value verifies.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use session_core::{IdLength, Keyring, MIN_ID_BYTES};
use session_fuzz::Input;

struct Rings {
    /// Signs with key A.
    a: Keyring,
    /// Signs with key B.
    b: Keyring,
    /// Signs with B, still verifies A: a rotation.
    rotated: Keyring,
    unsigned: Keyring,
}

fn rings() -> &'static Rings {
    static RINGS: OnceLock<Rings> = OnceLock::new();
    RINGS.get_or_init(|| {
        let ring = |secrets: &[[u8; 32]]| match Keyring::new(secrets) {
            Ok(ring) => ring,
            Err(error) => panic!("fuzz keyring: {error}"),
        };
        Rings {
            a: ring(&[[0xa1; 32]]),
            b: ring(&[[0xb2; 32]]),
            rotated: ring(&[[0xb2; 32], [0xa1; 32]]),
            unsigned: Keyring::insecure_unsigned(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let bytes = MIN_ID_BYTES + usize::from(input.byte()) % 49;
    let Ok(length) = IdLength::new(bytes) else {
        panic!("{bytes} is a valid id length");
    };
    let mode = input.byte();
    let name = String::from_utf8_lossy(input.take(usize::from(mode >> 1) % 24)).into_owned();
    if mode & 1 == 0 {
        verify_any(&name, input.rest(), length);
    } else {
        let id_bytes = input.take(bytes).to_vec();
        sign_and_edit(&name, id_bytes, length, input.rest());
    }
});

/// An arbitrary value verifies only as what its keyring would have signed.
fn verify_any(name: &str, value: &[u8], length: IdLength) {
    let rings = rings();
    if let Some(verified) = rings.a.verify(name, value, length) {
        assert!(!verified.needs_resigning());
        assert_eq!(rings.a.sign(name, verified.id()).as_bytes(), value);
    }
    if let Some(verified) = rings.rotated.verify(name, value, length) {
        let signer = if verified.needs_resigning() {
            &rings.a
        } else {
            &rings.b
        };
        assert_eq!(signer.sign(name, verified.id()).as_bytes(), value);
    }
    let canonical = URL_SAFE_NO_PAD.decode(value).is_ok_and(|decoded| {
        decoded.len() == length.bytes() && URL_SAFE_NO_PAD.encode(&decoded).as_bytes() == value
    });
    let unsigned = rings.unsigned.verify(name, value, length);
    assert_eq!(
        unsigned.as_ref().map(|v| v.id().as_str().as_bytes()),
        canonical.then_some(value),
        "an unsigned keyring takes exactly the canonical ids"
    );
}

/// A signed value verifies under its key and name and no other; no edit of it verifies.
fn sign_and_edit(name: &str, mut id_bytes: Vec<u8>, length: IdLength, edits: &[u8]) {
    let rings = rings();
    id_bytes.resize(length.bytes(), 0);
    let encoded = URL_SAFE_NO_PAD.encode(&id_bytes);
    let Some(id) = rings
        .unsigned
        .verify(name, &encoded, length)
        .map(|v| v.into_id())
    else {
        panic!(
            "the canonical spelling of {} bytes is not taken as an id",
            length.bytes()
        );
    };
    let value = rings.a.sign(name, &id);

    let verified = rings.a.verify(name, &value, length);
    assert_eq!(
        verified.as_ref().map(|v| (v.id(), v.needs_resigning())),
        Some((&id, false))
    );
    let verified = rings.rotated.verify(name, &value, length);
    assert_eq!(
        verified.as_ref().map(|v| (v.id(), v.needs_resigning())),
        Some((&id, true))
    );
    assert!(
        rings.b.verify(name, &value, length).is_none(),
        "verified under another key"
    );
    assert!(
        rings.unsigned.verify(name, &value, length).is_none(),
        "a signed value as a bare id"
    );
    let other_name = format!("{name}x");
    assert!(
        rings.a.verify(&other_name, &value, length).is_none(),
        "verified under another name"
    );
    if let Some(shorter) = name
        .get(..name.len().saturating_sub(1))
        .filter(|s| *s != name)
    {
        assert!(
            rings.a.verify(shorter, &value, length).is_none(),
            "verified under a prefix of its name"
        );
    }

    let edited = edit(value.as_bytes(), edits);
    let verified = rings.a.verify(name, &edited, length);
    if edited == value.as_bytes() {
        assert!(verified.is_some());
    } else {
        assert!(
            verified.is_none(),
            "an edited value verified: {:?} (signed {value:?})",
            String::from_utf8_lossy(&edited)
        );
        assert!(
            rings.rotated.verify(name, &edited, length).is_none(),
            "an edited value verified after rotation"
        );
    }
}

/// Applies `edits`, three bytes each: operation (replace, insert, remove), position, byte.
fn edit(value: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut bytes = value.to_vec();
    for step in edits.chunks_exact(3) {
        let (op, at, byte) = (step[0] % 3, usize::from(step[1]), step[2]);
        match op {
            0 if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            1 => bytes.insert(at.min(bytes.len()), byte),
            2 if !bytes.is_empty() => {
                bytes.remove(at % bytes.len());
            }
            _ => {}
        }
    }
    bytes
}
