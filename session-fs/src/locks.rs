//! Per-key locks that hold within a process and across processes sharing the directory,
//! and what each stripe's holder may know without reading a session file again.
//!
//! # Why a stripe remembers live sessions
//! `update` and `touch` must not bring back a session that was deleted or has expired,
//! and re-reading the file's header under the lock to make sure (an `open`, a `read` and
//! a `close` by path, on top of the write itself) is a large share of a file update's
//! cost (measured in `docs/performance.md`). Yet the answer is almost always already
//! known: this process wrote the session moments ago, and nothing can make a session stop
//! being live but time (its expiry, which is remembered with it), a removal (a delete,
//! an eviction, the expired sessions' cleanup), and another process's write or touch that
//! moves the expiry earlier. Removals in this process forget what they remove. Removals in
//! other processes are counted in the stripe's lock file, under the lock: a holder that
//! finds the count moved since it last looked forgets everything it knew about the stripe
//! and goes back to reading headers. Reading the count is one `pread` on a descriptor that
//! is already open, with no path to walk. Other processes' writes and touches are noticed
//! by the writer token below, with the same effect.
//!
//! # Why a stripe remembers revisions, and who last wrote
//! A conditional `update` or `delete_if_unchanged` must find the file still at the revision
//! its caller loaded. The revision is in the file's header, so checking it is that same
//! header read; each stripe therefore also remembers the revision this process last wrote
//! for each session it knows. But another process's update changes a revision, and its
//! update or touch an expiry, without removing anything, which the removal count does not
//! show. So the lock file also names the last process that wrote or touched a session file
//! of the stripe: each process (each store, in fact) has a random token, and writes it
//! there, under the lock, before such a write whenever the file names someone else. A
//! holder that reads its own token knows that nobody else has written in the stripe since
//! its own last write there, so the revisions and expiries it remembers are still the
//! files'. Otherwise it forgets everything it knew about the stripe and reads the
//! headers. Reading the token costs nothing more: it is in the same `pread` as the count.
//! A process alone on its directory writes its token once per stripe; processes that take
//! turns on a stripe write theirs at each turn, and read headers at each turn too.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use session_core::store::time::unix_millis;
use session_core::store::Revision;

use crate::dir::NO_FOLLOW;
use crate::error::{FileStoreError, OpenStep};

/// Enough stripes that unrelated sessions rarely wait for each other.
const STRIPES: usize = 64;

/// The most live sessions a stripe remembers (32,768 in all, a few megabytes at most); a
/// session it does not remember costs one header read, no more.
const KNOWN_PER_STRIPE: usize = 512;

/// Where a lock file keeps the count of removals and the last writer's token.
const REMOVALS_OFFSET: u64 = 0;
const WRITER_OFFSET: u64 = 8;

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
    /// little-endian `u64`; the next 8 are the token of the last store that wrote one of
    /// its session files (both 0 where the file has none yet).
    file: File,
    /// This store's token, the same in every stripe; never 0.
    token: u64,
    /// The count as this process last read or wrote it; `known` is valid while the file
    /// still says this.
    removals: u64,
    /// The writer token the lock file held when this process last read or wrote it.
    writer: u64,
    /// How many times this process locked the stripe: a lock-free create that sees it
    /// moved knows a holder may have removed or rewritten its new file already.
    holds: u64,
    /// Session file names known to be live until a Unix millisecond, because this process
    /// created, updated or touched them and no other process has removed, written or
    /// touched a file of the stripe since (then it is emptied). Hashed fast: the names come
    /// from store keys, digests or random ids that no client chooses.
    known: HashMap<Box<str>, Known, foldhash::fast::RandomState>,
}

/// What a stripe remembers about one live session.
#[derive(Debug, Clone, Copy)]
struct Known {
    expires_at: u64,
    /// The revision this process wrote; `None` if it only touched the file.
    revision: Option<Revision>,
}

/// Not derived: the names it knows are session ids, which are never logged.
impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("removals", &self.removals)
            .field("holds", &self.holds)
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}

/// Holds one stripe; releases the `flock` and then the mutex when dropped.
pub(crate) struct Guard<'a> {
    stripe: MutexGuard<'a, Stripe>,
    /// Whether the lock file's counts were read during this hold, so that what the stripe
    /// knows can be trusted until it is dropped.
    caught_up: bool,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Closing is not an option (the file is reused), and an unlock that fails leaves
        // the lock to be released when the process exits; nothing better can be done here.
        let _ = self.stripe.file.unlock();
    }
}

/// Where a lock-free create stood before its rename (see [`Locks::before_new`]): how many
/// times the stripe had been locked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Holds(u64);

impl Locks {
    /// The lock files in `dir` (the store's `.locks`), created if missing. A link or
    /// anything but a directory at `dir`, or but a regular file at a lock file's name, is
    /// refused rather than followed: the store would otherwise create or write a file
    /// wherever it points.
    pub(crate) fn open(dir: &Path) -> Result<Self, FileStoreError> {
        let unsafe_path = |path: &Path| FileStoreError::UnsafeLockPath {
            path: path.to_owned(),
        };
        let prepare = OpenStep::PrepareLockDirectory.on(dir);
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(unsafe_path(dir)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let created = fs::DirBuilder::new().mode(0o700).create(dir).or_else(|e| {
                    // Another store sharing the directory made it first.
                    if e.kind() == ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                });
                match created.and_then(|()| fs::symlink_metadata(dir)) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => return Err(unsafe_path(dir)),
                    Err(e) => return Err(prepare(e)),
                }
            }
            Err(e) => return Err(prepare(e)),
        }
        let token = new_token();
        let stripes = (0..STRIPES)
            .map(|n| {
                let path = dir.join(format!("{n:02}"));
                let file = open_lock_file(&path)?;
                let meta = file.metadata().map_err(OpenStep::OpenLockFile.on(&path))?;
                if !meta.is_file() {
                    return Err(unsafe_path(&path));
                }
                let (removals, writer) =
                    read_counts(&file).map_err(OpenStep::ReadLockFile.on(&path))?;
                Ok(Mutex::new(Stripe {
                    file,
                    token,
                    removals,
                    writer,
                    holds: 0,
                    known: HashMap::default(),
                }))
            })
            .collect::<Result<_, FileStoreError>>()?;
        Ok(Self { stripes })
    }

    /// Locks the stripe of the session file `name`, against this process's threads and
    /// other processes.
    pub(crate) fn lock(&self, name: &str) -> io::Result<Guard<'_>> {
        let mut stripe = self.stripe(name);
        stripe.file.lock()?;
        stripe.holds = stripe.holds.wrapping_add(1);
        Ok(Guard {
            stripe,
            caught_up: false,
        })
    }

    /// Where the stripe of `name` stands, taken before a lock-free create renames its
    /// file into place, for [`Locks::remember_new`].
    pub(crate) fn before_new(&self, name: &str) -> Holds {
        Holds(self.stripe(name).holds)
    }

    /// Remembers that this process just made `name` live until `expires_at` (Unix ms) at
    /// `revision` without the stripe's file lock: for a new session, renamed into a free
    /// name. Only the mutex is taken. If the stripe was locked since `before` (taken
    /// before the rename), that holder, or another process it caught up with, may have
    /// removed or rewritten the new file already, so nothing is remembered; another
    /// process's change not caught up with yet is still noticed by the next holder of the
    /// lock, which then stops trusting this too.
    pub(crate) fn remember_new(
        &self,
        name: &str,
        expires_at: u64,
        revision: Revision,
        before: Holds,
    ) {
        let mut stripe = self.stripe(name);
        if stripe.holds == before.0 {
            stripe.remember(name, expires_at, Some(revision));
        }
    }

    fn stripe(&self, name: &str) -> MutexGuard<'_, Stripe> {
        // Every critical section leaves the files in a consistent state before it can
        // panic, so a poisoned mutex is still usable.
        self.stripes[stripe(name)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Guard<'_> {
    /// Whether `name` is known to be live at `now` (Unix ms) without reading its file.
    /// `false` means "read the header": unknown, expired, or another process removed
    /// files of this stripe since this process last looked.
    pub(crate) fn is_known_live(&mut self, name: &str, now: u64) -> io::Result<bool> {
        self.catch_up()?;
        Ok(self.stripe.live(name, now).is_some())
    }

    /// The revision `name` is known to be at, live at `now` (Unix ms), without reading its
    /// file; `None` means "read the header": unknown, expired, or another process wrote
    /// or removed files of this stripe since this process last wrote this one.
    pub(crate) fn known_revision(&mut self, name: &str, now: u64) -> io::Result<Option<Revision>> {
        self.catch_up()?;
        Ok(self.stripe.live(name, now).and_then(|known| known.revision))
    }

    /// Names this store as the stripe's last writer in the lock file, if it is not yet;
    /// call it before a write of a session file that can change its revision or expiry.
    pub(crate) fn before_write(&mut self) -> io::Result<()> {
        self.catch_up()?;
        let stripe = &mut *self.stripe;
        if stripe.writer != stripe.token {
            stripe
                .file
                .write_all_at(&stripe.token.to_le_bytes(), WRITER_OFFSET)?;
            stripe.writer = stripe.token;
        }
        Ok(())
    }

    /// Remembers that `name` is live until `expires_at` (Unix ms) at `revision`, having
    /// just written it after [`Guard::before_write`].
    pub(crate) fn wrote(&mut self, name: &str, expires_at: u64, revision: Revision) {
        self.stripe.remember(name, expires_at, Some(revision));
    }

    /// Remembers that `name` is live until `expires_at` (Unix ms), having just moved its
    /// expiry; the revision it is known at, if any, stays.
    pub(crate) fn touched(&mut self, name: &str, expires_at: u64) {
        self.stripe.remember(name, expires_at, None);
    }

    /// Forgets `name`, found absent.
    pub(crate) fn forget(&mut self, name: &str) {
        self.stripe.known.remove(name);
    }

    /// Records that `name` was removed: forgotten here, and counted in the lock file for
    /// the other processes.
    pub(crate) fn removed(&mut self, name: &str) -> io::Result<()> {
        self.catch_up()?;
        let stripe = &mut *self.stripe;
        stripe.known.remove(name);
        stripe.removals = stripe.removals.wrapping_add(1);
        stripe
            .file
            .write_all_at(&stripe.removals.to_le_bytes(), REMOVALS_OFFSET)
    }

    /// Reads the lock file's removal count and writer, once per hold, and forgets what
    /// another process may have made stale: everything, if it removed a file or if it (or
    /// anyone but this store) was the last to write or touch one.
    fn catch_up(&mut self) -> io::Result<()> {
        if self.caught_up {
            return Ok(());
        }
        let stripe = &mut *self.stripe;
        let (removals, writer) = read_counts(&stripe.file)?;
        // Not only when the writer changed: the same other process may have written again,
        // and its write or touch may have moved an expiry earlier, not only a revision on.
        if removals != stripe.removals || writer != stripe.token {
            stripe.known.clear();
        }
        stripe.removals = removals;
        stripe.writer = writer;
        self.caught_up = true;
        Ok(())
    }
}

impl Stripe {
    /// What the stripe knows about `name`, if it is live at `now` (Unix ms).
    fn live(&self, name: &str, now: u64) -> Option<Known> {
        self.known
            .get(name)
            .copied()
            .filter(|known| known.expires_at > now)
    }

    /// Remembers that `name` is live until `expires_at` (Unix ms), and at `revision` if
    /// given (else keeps what it knew of the revision).
    fn remember(&mut self, name: &str, expires_at: u64, revision: Option<Revision>) {
        if let Some(known) = self.known.get_mut(name) {
            known.expires_at = expires_at;
            if revision.is_some() {
                known.revision = revision;
            }
            return;
        }
        if self.known.len() >= KNOWN_PER_STRIPE {
            // Full: keep the sessions that are still live if that makes room, else start
            // over. Either way the cost of forgetting is one header read per session.
            let now = unix_millis(SystemTime::now());
            self.known.retain(|_, known| known.expires_at > now);
            if self.known.len() >= KNOWN_PER_STRIPE {
                self.known.clear();
            }
        }
        self.known.insert(
            name.into(),
            Known {
                expires_at,
                revision,
            },
        );
    }
}

/// Opens or creates the lock file at `path` without following a link there; a link or
/// anything but a regular file there is [`FileStoreError::UnsafeLockPath`].
fn open_lock_file(path: &Path) -> Result<File, FileStoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(NO_FOLLOW)
        .open(path)
        .map_err(|error| {
            if fs::symlink_metadata(path).is_ok_and(|meta| !meta.is_file()) {
                FileStoreError::UnsafeLockPath {
                    path: path.to_owned(),
                }
            } else {
                OpenStep::OpenLockFile.on(path)(error)
            }
        })
}

/// The removal count and the writer token in a lock file; 0 for what a file does not have
/// yet (a new one, or one made by a version that did not keep it).
fn read_counts(file: &File) -> io::Result<(u64, u64)> {
    let mut bytes = [0u8; 16];
    let mut read = 0;
    while read < bytes.len() {
        match file.read_at(&mut bytes[read..], read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (removals, writer) = bytes.split_at(8);
    Ok((le_u64(removals), le_u64(writer)))
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(bytes);
    u64::from_le_bytes(array)
}

/// A token for one store, different from every other store's: the process id, a serial
/// number and the time, hashed with the random key of std's `RandomState` (so processes
/// on different hosts sharing a directory differ too). Never 0, which means "nobody".
fn new_token() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(SERIAL.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish().max(1)
}

/// FNV-1a: stable across builds and processes, unlike std's hasher.
fn stripe(name: &str) -> usize {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % STRIPES as u64) as usize
}
