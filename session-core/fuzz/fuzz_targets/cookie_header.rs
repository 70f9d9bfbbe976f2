//! `SessionManager::verify` on a request's `Cookie` headers (and through it the cookie
//! settings' scan of a header for the session cookie's values): whatever the other
//! cookies hold, a session cookie that verifies is found, and nothing that a key did not
//! sign for this cookie name is taken as one.
//!
//! Input: byte 0 picks one of four configurations (cookie name, id length, keyring); byte
//! 1 bit 0 says whether to splice in a validly signed session cookie, bits 1.. which
//! header it goes in, and the next two bytes where in it. The rest is the headers,
//! separated by `\n` (a header value cannot hold one), as raw bytes.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use session_core::adapter::{RequestCookie, SessionManager};
use session_core::{Config, IdLength, Keyring, MemoryStore};
use session_fuzz::Input;

struct Setup {
    manager: SessionManager,
    /// The keyring that signed the cookies the manager re-signs (its old key), if it has
    /// one besides its first.
    old: Option<Keyring>,
    id_length: IdLength,
}

fn setups() -> &'static [Setup] {
    static SETUPS: OnceLock<Vec<Setup>> = OnceLock::new();
    SETUPS.get_or_init(|| {
        let ring = |secrets: &[[u8; 32]]| match Keyring::new(secrets) {
            Ok(ring) => ring,
            Err(error) => panic!("fuzz keyring: {error}"),
        };
        let setup = |keyring: Keyring, name: &str, id_bytes: usize, old: Option<Keyring>| {
            let config = Config::builder(keyring)
                .cookie_name(name)
                .id_length(id_bytes)
                .build();
            match config {
                Ok(config) => Setup {
                    manager: SessionManager::new(MemoryStore::new(), config),
                    old,
                    id_length: match IdLength::new(id_bytes) {
                        Ok(length) => length,
                        Err(error) => panic!("{error}"),
                    },
                },
                Err(error) => panic!("fuzz configuration {name}: {error}"),
            }
        };
        vec![
            setup(ring(&[[0xa1; 32]]), "session", 32, None),
            setup(ring(&[[0xa1; 32]]), "__Host-sid", 16, None),
            setup(
                ring(&[[0xb2; 32], [0xa1; 32]]),
                "id",
                64,
                Some(ring(&[[0xa1; 32]])),
            ),
            setup(Keyring::insecure_unsigned(), "s", 32, None),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setups = setups();
    let setup = &setups[usize::from(input.byte()) % setups.len()];
    let splice = input.byte();
    let offset = usize::from(input.u16());
    let mut headers: Vec<Vec<u8>> = input
        .rest()
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();

    check_found_values(setup, &headers);

    if splice & 1 == 1 {
        let config = setup.manager.config();
        let name = config.cookie().name();
        // A fixed id per splice byte: reproducible, and distinct across inputs.
        let id_bytes = vec![splice; setup.id_length.bytes()];
        let Some(id) = Keyring::insecure_unsigned()
            .verify(name, &URL_SAFE_NO_PAD.encode(&id_bytes), setup.id_length)
            .map(|v| v.into_id())
        else {
            panic!("a canonical id does not parse");
        };
        let value = config.keyring().sign(name, &id);
        let index = usize::from(splice >> 1) % headers.len();
        let header = &mut headers[index];
        let at = offset.min(header.len());
        let cookie = format!(";{name}={value};");
        header.splice(at..at, cookie.bytes());
        match setup.manager.verify(&headers) {
            RequestCookie::Valid(_) => {}
            other => {
                panic!("a validly signed session cookie among others was not found: {other:?}")
            }
        }
        check_found_values(setup, &headers);
    }
});

/// A cookie that verifies is one that the configuration's keyring (or, re-signed, its
/// old key) would have produced for its id, and it is literally in one of the headers.
fn check_found_values(setup: &Setup, headers: &[Vec<u8>]) {
    let config = setup.manager.config();
    let name = config.cookie().name();
    let RequestCookie::Valid(verified) = setup.manager.verify(headers) else {
        return;
    };
    let signer = match (&setup.old, verified.needs_resigning()) {
        (_, false) => config.keyring(),
        (Some(old), true) => old,
        (None, true) => panic!("re-signing asked for by a keyring with one key"),
    };
    let value = signer.sign(name, verified.id());
    assert!(
        headers
            .iter()
            .any(|header| header.windows(value.len()).any(|w| w == value.as_bytes())),
        "a verified cookie that is not in the headers"
    );
    assert!(
        headers.iter().any(|header| config
            .cookie()
            .values_in(header)
            .any(|v| v == value.as_bytes())),
        "a verified cookie that the scan for its name does not yield"
    );
}
