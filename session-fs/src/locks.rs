//! Per-key locks that hold within a process and across processes sharing the directory,
//! and what each stripe's holder may know without reading a session file again.
//!
//! # Why a stripe remembers live sessions
//! `update` and `touch` must not bring back a session that was deleted or has expired, so
//! each one used to re-read the file's header under the lock: an `open`, a `read` and a
//! `close` by path, on top of the write itself. On a file `/incr` that check was 15 % of the
//! request (`bench` with and without it, two alternating 4-second `wrk` runs each on
//! tmpfs: 26,672 and 25,861 req/s with it, 30,758 and 30,963 without). Yet the answer is
//! almost always already known: this process wrote the session moments ago, and nothing
//! can make a session stop being live but time (its expiry, which is remembered with it)
//! and a removal (a delete, an eviction, the expired sessions' cleanup). Removals in this
//! process forget what they remove. Removals in other processes are counted in the
//! stripe's lock file, under the lock: a holder that finds the count moved since it last
//! looked forgets everything it knew about the stripe and goes back to reading headers.
//! Reading the count is one `pread` on a descriptor that is already open, with no path to
//! walk.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use session_core::time::unix_millis;

/// Enough stripes that unrelated sessions rarely wait for each other.
const STRIPES: usize = 64;

/// The most live sessions a stripe remembers (32,768 in all, a few megabytes at most); a
/// session it does not remember costs one header read, no more.
const KNOWN_PER_STRIPE: usize = 512;

/// Striped locks: stripe `n` is a mutex (threads of this process) around an open lock
/// file `.locks/n` whose `flock` excludes other processes. Both are needed: `flock` is
/// held per open file, so it does not exclude two threads sharing one.
#[derive(Debug)]
pub(crate) struct Locks {
    stripes: Vec<Mutex<Stripe>>,
}

/// One stripe's lock file, and what this process knows about the stripe's sessions.
pub(crate) struct Stripe {
    /// Its first 8 bytes count the removals of the stripe's files, by every process, as a
    /// little-endian `u64` (an empty file counts 0).
    file: File,
    /// The count as this process last read or wrote it; `known` is valid while the file
    /// still says this.
    removals: u64,
    /// Session file names known to be live until the given Unix millisecond, because this
    /// process created, updated or touched them and no removal has happened since.
    known: HashMap<Box<str>, u64>,
}

/// Not derived: the names it knows are session ids, which are never logged.
impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("removals", &self.removals)
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}

/// Holds one stripe; releases the `flock` and then the mutex when dropped.
pub(crate) struct Guard<'a> {
    stripe: MutexGuard<'a, Stripe>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Closing is not an option (the file is reused), and an unlock that fails leaves
        // the lock to be released when the process exits; nothing better can be done here.
        let _ = self.stripe.file.unlock();
    }
}

impl Deref for Guard<'_> {
    type Target = Stripe;
    fn deref(&self) -> &Stripe {
        &self.stripe
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Stripe {
        &mut self.stripe
    }
}

impl Locks {
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let stripes = (0..STRIPES)
            .map(|n| {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(dir.join(format!("{n:02}")))?;
                Ok(Mutex::new(Stripe {
                    removals: read_removals(&file)?,
                    file,
                    known: HashMap::new(),
                }))
            })
            .collect::<io::Result<_>>()?;
        Ok(Self { stripes })
    }

    /// Locks the stripe of the session file `name`, against this process's threads and
    /// other processes.
    pub(crate) fn lock(&self, name: &str) -> io::Result<Guard<'_>> {
        let stripe = self.stripe(name);
        stripe.file.lock()?;
        Ok(Guard { stripe })
    }

    /// Remembers that this process just made `name` live until `expires_at` (Unix ms)
    /// without the stripe's file lock: for a new session, renamed into a free name. Only
    /// the mutex is taken; a removal by another process since the count was last read is
    /// still noticed by the next [`Stripe::is_known_live`], which then forgets this too.
    pub(crate) fn remember_new(&self, name: &str, expires_at: u64) {
        self.stripe(name).remember(name, expires_at);
    }

    fn stripe(&self, name: &str) -> MutexGuard<'_, Stripe> {
        // Every critical section leaves the files in a consistent state before it can
        // panic, so a poisoned mutex is still usable.
        self.stripes[stripe(name)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Stripe {
    /// Whether `name` is known to be live at `now` (Unix ms) without reading its file.
    /// `false` means "read the header": unknown, expired, or another process removed
    /// files of this stripe since this process last looked. Call it holding the lock.
    pub(crate) fn is_known_live(&mut self, name: &str, now: u64) -> io::Result<bool> {
        self.catch_up()?;
        Ok(self.known.get(name).is_some_and(|&expiry| expiry > now))
    }

    /// Reads the removal count and, if another process moved it since this one last
    /// looked, forgets everything: any of the sessions known live may be gone.
    fn catch_up(&mut self) -> io::Result<()> {
        let removals = read_removals(&self.file)?;
        if removals != self.removals {
            self.known.clear();
            self.removals = removals;
        }
        Ok(())
    }

    /// Remembers that `name` is live until `expires_at` (Unix ms), having just written it.
    pub(crate) fn remember(&mut self, name: &str, expires_at: u64) {
        if let Some(expiry) = self.known.get_mut(name) {
            *expiry = expires_at;
            return;
        }
        if self.known.len() >= KNOWN_PER_STRIPE {
            // Full: keep the sessions that are still live if that makes room, else start
            // over. Either way the cost of forgetting is one header read per session.
            let now = unix_millis(SystemTime::now());
            self.known.retain(|_, expiry| *expiry > now);
            if self.known.len() >= KNOWN_PER_STRIPE {
                self.known.clear();
            }
        }
        self.known.insert(name.into(), expires_at);
    }

    /// Forgets `name`, found absent.
    pub(crate) fn forget(&mut self, name: &str) {
        self.known.remove(name);
    }

    /// Records that `name` was removed: forgotten here, and counted in the lock file for
    /// the other processes. Call it holding the lock.
    pub(crate) fn removed(&mut self, name: &str) -> io::Result<()> {
        self.known.remove(name);
        self.catch_up()?;
        self.removals = self.removals.wrapping_add(1);
        self.file.write_all_at(&self.removals.to_le_bytes(), 0)
    }
}

/// The removal count in a lock file; 0 for a file that has none yet (a new one, or one
/// made by a version that did not count).
fn read_removals(file: &File) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    match file.read_exact_at(&mut bytes, 0) {
        Ok(()) => Ok(u64::from_le_bytes(bytes)),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(e),
    }
}

/// FNV-1a: stable across builds and processes, unlike std's hasher.
fn stripe(name: &str) -> usize {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % STRIPES as u64) as usize
}
