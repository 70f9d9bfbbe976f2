//! `FileStore` reading a session file whose bytes are the input: the `SES2` header and the
//! record behind it, through every operation that reads a header (`load`, `touch`, `update`, `delete_expired`). No panic, no error for a regular
//! file, no allocation beyond the file's size, and the answers the file format in the
//! crate docs gives: a live, whole session loads with its record, revision and expiry;
//! anything else is absent.
//!
//! The store lives in `$SESSION_FUZZ_DIR` (the temporary directory if unset), in a
//! directory of its own per process.
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use session_core::store::{Revision, Store, StoreError, StoreKey};
use session_core::store::time::{from_unix_millis, unix_millis};
use session_core::{IdLength, Keyring};
use session_fs::FileStore;
use session_fuzz::block_on;

struct Setup {
    store: FileStore,
    key: StoreKey,
    /// The file the store keeps `key` in.
    path: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let base =
            std::env::var_os("SESSION_FUZZ_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let dir = base.join(format!("file_header-{}", std::process::id()));
        let store = match FileStore::open(&dir) {
            Ok(store) => store,
            Err(error) => panic!("fuzz store in {}: {error}", dir.display()),
        };
        let encoded = "A".repeat(IdLength::default().encoded_len());
        let Some(id) = Keyring::insecure_unsigned()
            .verify("session", &encoded, IdLength::default())
            .map(|v| v.into_id())
        else {
            panic!("a canonical id does not parse");
        };
        let key = StoreKey::new("session:", &id);
        // A default key is its own file name (see the crate docs).
        let path = dir.join(key.as_str());
        Setup { store, key, path }
    })
}

/// What the file format says of `bytes`: a header's revision and expiry (Unix
/// milliseconds), and the record if the file holds all of it; `None` without a header.
struct Expected<'a> {
    record: Option<&'a [u8]>,
    revision: Revision,
    expiry: u64,
}

fn expected(bytes: &[u8]) -> Option<Expected<'_>> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    if bytes.get(..4)? != b"SES2" {
        return None;
    }
    let record_len = u32_at(4)?;
    let expiry = u64_at(8)?;
    let revision = Revision::new(u64_at(16)?);
    let after_header = bytes.get(24..)?;
    let record = match usize::try_from(record_len).ok()? {
        // Length 0 (an empty record, or one too long for the field): the rest of the file.
        0 => Some(after_header),
        len => after_header.get(..len),
    };
    Some(Expected {
        record,
        revision,
        expiry,
    })
}

fn now_millis() -> u64 {
    unix_millis(SystemTime::now())
}

fuzz_target!(|data: &[u8]| {
    let Setup { store, key, path } = setup();
    if let Err(error) = fs::write(path, data) {
        panic!("writing the fuzz file: {error}");
    }
    let expected = expected(data);

    let before = now_millis();
    let loaded = match block_on(store.load(key)) {
        Ok(loaded) => loaded,
        Err(error) => panic!("load of a regular file failed: {error} ({error:?})"),
    };
    let after = now_millis();
    // Whether the file's header is live, as far as the clock allows to say.
    let live = match &expected {
        None => Some(false),
        Some(file) if file.expiry > after => Some(true),
        Some(file) if file.expiry <= before => Some(false),
        Some(_) => None,
    };
    let record = expected.as_ref().and_then(|file| file.record);
    match (&loaded, &expected, live) {
        (Some(loaded), Some(file), Some(true) | None) => {
            assert!(
                Some(loaded.value()) == file.record,
                "the loaded record is not the file's"
            );
            assert_eq!(loaded.revision(), file.revision);
            assert_eq!(loaded.expires_at(), Some(from_unix_millis(file.expiry)));
        }
        (None, _, Some(true)) if record.is_none() => {}
        (None, _, Some(false) | None) => {}
        (Some(_), _, _) => panic!("loaded a session from a file that holds no live one"),
        (None, _, _) => panic!("a live session file did not load"),
    }

    let later = SystemTime::now() + Duration::from_secs(86_400);
    match (loaded, live) {
        (Some(loaded), _) => {
            // Live now, and made to stay so for the checks below.
            if let Err(error) = block_on(store.touch(key, later)) {
                panic!("touch of a live session failed: {error} ({error:?})");
            }
            let touched = match block_on(store.load(key)) {
                Ok(Some(touched)) => touched,
                Ok(None) => panic!("a touched session is gone"),
                Err(error) => panic!("load after touch failed: {error} ({error:?})"),
            };
            assert!(
                touched.value() == loaded.value(),
                "touch changed the record"
            );
            assert_eq!(
                touched.revision(),
                loaded.revision(),
                "touch changed the revision"
            );
            assert_eq!(
                touched.expires_at(),
                Some(from_unix_millis(unix_millis(later)))
            );

            let stale = loaded.revision().next();
            match block_on(store.update(key, b"{}", later, stale)) {
                Err(StoreError::Conflict { current }) => {
                    if let Some(current) = current {
                        assert!(
                            current.value() == loaded.value(),
                            "the conflict's record is not the file's"
                        );
                        assert_eq!(current.revision(), loaded.revision());
                    }
                }
                Ok(_) => panic!("an update at another revision than the file's succeeded"),
                Err(error) => panic!("an update at a stale revision: {error} ({error:?})"),
            }
            match block_on(store.update(key, b"{}", later, loaded.revision())) {
                Ok(revision) => assert_eq!(revision, loaded.revision().next()),
                Err(error) => {
                    panic!("an update at the file's revision failed: {error} ({error:?})")
                }
            }
        }
        (None, Some(false)) => {
            match block_on(store.touch(key, later)) {
                Err(StoreError::UnknownId) => {}
                Ok(()) => panic!("touch brought back a session that was not live"),
                Err(error) => panic!("touch of a dead or foreign file: {error} ({error:?})"),
            }
            match block_on(store.update(key, b"{}", later, Revision::FIRST)) {
                Err(StoreError::UnknownId) => {}
                Ok(_) => panic!("update wrote over a session that was not live"),
                Err(error) => panic!("update of a dead or foreign file: {error} ({error:?})"),
            }
        }
        // A live header over a cut record: `load` finds no session, so neither may
        // `touch` nor `update`, which would bring back what `load` said was absent.
        (None, Some(true)) => {
            let revision = expected
                .as_ref()
                .map_or(Revision::FIRST, |file| file.revision);
            match block_on(store.touch(key, later)) {
                Err(StoreError::UnknownId) => {}
                Ok(()) => panic!("touch found a session in a cut file that load did not"),
                Err(error) => panic!("touch of a cut session file: {error} ({error:?})"),
            }
            match block_on(store.update(key, b"{}", later, revision)) {
                Err(StoreError::UnknownId) => {}
                Ok(_) => panic!("update found a session in a cut file that load did not"),
                Err(error) => panic!("update of a cut session file: {error} ({error:?})"),
            }
        }
        (None, None) => {}
    }

    if let Err(error) = block_on(store.delete_expired()) {
        panic!("delete_expired with one regular file in the directory: {error} ({error:?})");
    }
    // Gone through the store, so that the next input's file is new to it (the store
    // remembers what it wrote, and a file changed by hand is not).
    if let Err(error) = block_on(store.delete(key)) {
        panic!("delete: {error} ({error:?})");
    }
});
