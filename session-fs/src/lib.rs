//! `FileStore`: sessions as files in a directory, the embedded default.
//!
//! ```no_run
//! use std::time::Duration;
//! use session_fs::FileStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_fs::FileStoreError> {
//! let store = FileStore::open("./.sessions")?;
//! let limited = FileStore::builder("./.sessions")
//!     .file_mode(0o600)
//!     .limit(100_000)
//!     .open()?;
//! // Files are not removed when they expire: sweep them every ten minutes.
//! let _cleanup = store.spawn_cleanup(Duration::from_secs(600));
//! # Ok(()) }
//! ```
//!
//! # Setting it up
//! The directory plays the part a URL plays for the network stores, and the constructors
//! have their shape: [`FileStore::open`] with the defaults, or [`FileStore::builder`] with
//! the directory, the options, and [`open`](FileStoreBuilder::open). They are `open`, not
//! `connect`, because there is no server: the store opens (and if need be creates) the
//! directory, at once and without `.await`.
//!
//! Nothing removes the file of an expired session by itself (a session read after it
//! expired is absent all the same): [`FileStore::spawn_cleanup`] removes them
//! periodically, as `SqlStore::spawn_cleanup` does for rows, together with the temporary
//! files of writes a crashed process never finished (once they are an hour old).
//!
//! # Default
//! The directory is created if missing, private to the server's user (0700), and each
//! session file is 0600. If you give an existing directory that other users can list or
//! change, `open` refuses it with [`FileStoreError::ExposedDirectory`]: the files hold the
//! sessions' data, and with `KeyScheme::PlainId` their names are the live session ids, so
//! listing them would be enough to take over every session. Make it
//! private yourself (`chmod 700`), or let the store do it with
//! [`.exposed_directory(ExposedDirectory::Tighten)`](FileStoreBuilder::exposed_directory).
//! A directory that another user owns is refused whatever its mode, with
//! [`FileStoreError::NotOwned`]: its owner can list it, or open it to everyone, at any time.
//! There is no limit on the number of sessions, and file I/O runs on the calling thread.
//!
//! # On disk
//! One file per session, named after its store key (`session:<SHA-256 of the id>` by
//! default; characters that are
//! not safe in a file name are `%XX`-escaped). A key whose escaped name would pass the 255
//! bytes a file name may have (a long prefix of escaped characters) is named by the first
//! 190 bytes of that name, `~` and the key's SHA-256 in hex instead, so that every prefix
//! session-core accepts works. A file holds a 24-byte header (`SES2`, the
//! record's length as a little-endian `u32`, the expiry as little-endian Unix
//! milliseconds, the record's [`Revision`] as a little-endian `u64`) and then the encoded
//! session, so `tail -c +25 .sessions/session:*` shows the JSON.
//!
//! | operation | what it does to the files |
//! |---|---|
//! | `load` | `open`, `readv`, `close`; no lock |
//! | `create` | temporary file, `renameat2(RENAME_NOREPLACE)`; no lock unless the name is taken |
//! | `update` | lock; the header's revision and expiry, unless known; temporary file, `rename` |
//! | `delete_if_unchanged` | lock; the header's revision and expiry, unless known; `unlink` |
//! | `touch` | lock; the header's expiry, unless known; an 8-byte `pwrite` of the expiry |
//! | `delete` | lock; `unlink` |
//! | `delete_expired` | directory scan, header reads; lock and `unlink` per expired file; then each user's index, a header read per entry; then `unlink` of temporary files an hour old |
//! | `create_bound` | lock; the index entry (an empty file); then as `create` |
//! | `unbind` | `unlink` of the index entry; `rmdir` of the user's index once empty |
//! | `list_bound` | the user's index read; `open`, `readv`, `close` per entry; lock and `unlink` per entry pruned |
//! | `count`, `scan` | directory scan, header reads; `scan` reads its page's files too |
//!
//! A revision check that fails reads the whole file once more, for the `Conflict` error.
//!
//! - Writes are atomic: a temporary file in the same directory, then `rename`. Each write of
//!   a session's value gives its file the revision after the one it replaced; a new file
//!   starts at [`Revision::FIRST`].
//! - File I/O runs on the calling thread: a session file is a few hundred bytes in the page
//!   cache, and reading or writing it takes less time than handing the operation to
//!   another thread would. On a slow or network filesystem, `.io_thread(IoThread::BlockingPool)` moves it to
//!   tokio's blocking pool instead.
//! - `touch` rewrites the 8 expiry bytes in place, not the data nor the revision.
//! - Files are created with mode 0600 (configurable) in a directory created with 0700; an
//!   existing directory that lets other users list or change it beyond what the files'
//!   mode grants them is refused, or tightened (see [`ExposedDirectory`]).
//! - Every change to a stored session happens under a lock striped by key: a mutex within
//!   the process and an advisory `flock` on `.locks/NN` across processes, so two processes
//!   sharing a directory cannot resurrect, overwrite or tear each other's sessions.
//!   Reads take no lock; `rename` makes them see a whole old or a whole new file.
//! - A touch of a session this process wrote, as long as no other process has removed,
//!   written or touched a session of that stripe since, does not re-read the file's
//!   header to know it is live: each stripe remembers the expiry of the sessions this
//!   process wrote, and its lock file counts every process's removals and names the
//!   stripe's last writer. An update or conditional delete at the revision this process
//!   last wrote does not re-read it either, on the same condition (see `locks` in the
//!   source for why). A file removed or edited by hand, not through a store, can be
//!   written again by an update that comes before the next delete of it; a read sees the
//!   change at once.
//! - A new session needs no lock on Linux: its file is renamed into place with
//!   `renameat2(RENAME_NOREPLACE)`, which fails if any file has the name, and only then
//!   (a dead file to replace, or a filesystem without the flag) does the lock decide.
//! - Files are written in one `write`, and chmod-ed only when the process umask (read once,
//!   at `open`) would take bits off the requested mode. On ext4 they are preallocated
//!   first (see `preallocate` in the source for why and what it costs).
//! - A read is `open`, one `readv` and `close` for records under about 1 KB: the header
//!   says how long the record is, so there is no `statx` and no read to find the end. A
//!   longer record takes a `statx` first, so that the header's length is checked against
//!   the file's size before that much memory is allocated: a header that claims more than
//!   the file holds marks a corrupt file, and the session is absent.
//! - The optional limit is kept with a counter, not a directory scan per write. When a
//!   create finds the store full, expired files are removed, then the sessions closest to
//!   expiry, down to 90 % of the limit; the scan this needs happens once per tenth of the
//!   limit, not once per write. With several processes the counter is resynchronised by
//!   that scan.
//!
//! # Users' sessions
//! A user's index ([`Store::create_bound`], [`Store::list_bound`]) is a directory,
//! `.users/<user key>/` (the [`UserKey`] named as a session key is; 0700), holding one
//! empty file (0600) per session bound to the user, named as the session's file. `create_bound` makes
//! the entry and then the session file, both under the session's lock; `unbind` removes
//! the entry, and the user's directory once it is empty (a bind at that moment makes it
//! again, so no entry is lost). `list_bound` reads the user's directory and each session
//! file it names, without touching them, and prunes the entries whose session is gone or
//! expired, under the session's lock so that a login under way is never pruned;
//! `delete_expired` prunes every user's index the same way, so the entries of users who
//! never list their sessions do not pile up. A key whose file name is shortened cannot be
//! read back from the name: a create keeps it in `.keys/<name>`, removed with the session.
//!
//! [`Store::count`] and [`Store::scan`] walk the directory and read every session file's
//! header, as `delete_expired` does: their cost grows with all the sessions in the
//! directory, not with the ones under the prefix, and `scan` walks it again for each page
//! (sorted by key; the cursor is the page's last key).
//!
//! # Only its own files
//! The store reads, counts and removes only its session files: regular files with a name
//! it gives a session (`session:<id>`, escaped or shortened as above) that start with a
//! session header. Anything else you or the system put in the directory stays as it is
//! and makes no operation fail: `lost+found` at the root of a filesystem of its own,
//! another program's file, a directory, a FIFO, a symbolic link, a file named like a
//! session without a session header. `delete_expired` and the limit's eviction skip
//! them, and the limit does not count them; `load` finds such an entry absent, and a new
//! session with that very name may replace it. A session file whose header was lost is not
//! recognisable as the store's any more either (on ext4, a power failure during an update
//! can leave a file of zeros: see `preallocate` in the source); remove it yourself if you
//! find one.
//!
//! Session and lock files are opened with `O_NOFOLLOW`, so a symbolic link in the
//! directory is never read or written through, and without blocking, so a FIFO never
//! makes an operation wait. A link, or anything but a regular file, where a lock file
//! goes makes `open` fail with [`FileStoreError::UnsafeLockPath`] rather than write
//! wherever it points; a link, or anything but a directory, at `.users` or `.keys` makes
//! it fail with [`FileStoreError::UnsafeIndexPath`]. Their names start with `.`, as the
//! lock files' and temporary files' do, which no session file's name does, so no walk of
//! the sessions ever takes them for one.

mod dir;
mod error;
mod layout;
mod locks;

use std::io::{self, ErrorKind};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::store::time::unix_millis;
use session_core::store::{
    is_session_key, Listed, Loaded, Revision, ScanCursor, ScanPage, Store, StoreError, StoreKey,
    UserKey,
};
use session_core::Cleanup;

use crate::dir::{Dir, Entry, Stored, TempFile};
pub use crate::error::{ExposedDirectory, FileStoreError, OpenStep};
use crate::layout::{file_name, is_shortened, key_from_name, user_dir_name, Header, HEADER_LEN};
use crate::locks::{Guard, Locks};

const BACKEND: &str = "file";

/// Files are removed in batches of this many between re-reads of the directory listing.
const DELETE_BATCH: usize = 1000;

/// How old a temporary file is before the cleanup takes it for one a crashed write left:
/// far longer than any write takes from its open to its rename.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Which thread runs a [`FileStore`]'s file I/O; see [`FileStoreBuilder::io_thread`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoThread {
    /// The thread that calls the store: a session file in the page cache is read or
    /// written faster than the I/O could be handed to another thread.
    Caller,
    /// tokio's blocking pool, for filesystems where a read or write can take long.
    BlockingPool,
}

/// Sessions as files in a directory. Cloning is cheap and shares the directory's state.
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: Dir,
    limit: Option<usize>,
    count: AtomicUsize,
    locks: Locks,
    io: IoThread,
}

/// Configures a [`FileStore`]: made by [`FileStore::builder`], finished by
/// [`open`](FileStoreBuilder::open).
#[derive(Debug, Clone)]
#[must_use]
pub struct FileStoreBuilder {
    dir: PathBuf,
    mode: u32,
    limit: Option<usize>,
    io: IoThread,
    exposed: ExposedDirectory,
}

impl FileStoreBuilder {
    /// The permission bits of session files.
    ///
    /// # Default
    /// `0o600`: the server's user only.
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// The most sessions the directory holds. See the crate docs for what happens when it
    /// is reached.
    ///
    /// # Default
    /// No limit.
    pub fn limit(mut self, sessions: usize) -> Self {
        self.limit = Some(sessions.max(1));
        self
    }

    /// Which thread does the file I/O: the one that calls the store, or tokio's blocking
    /// pool. The pool is worth it only where a session file can take long to read or write
    /// (a network or a very slow filesystem): elsewhere the hand-off costs more than the
    /// I/O.
    ///
    /// # Default
    /// [`IoThread::Caller`].
    ///
    /// # Example
    /// ```
    /// use session_fs::{FileStore, IoThread};
    ///
    /// let builder = FileStore::builder("/mnt/nfs/sessions").io_thread(IoThread::BlockingPool);
    /// ```
    pub fn io_thread(mut self, io: IoThread) -> Self {
        self.io = io;
        self
    }

    /// What to do if the directory exists and lets other users list the session ids in it
    /// or change its files. A directory the store creates is private.
    ///
    /// # Default
    /// [`ExposedDirectory::Refuse`]: `open` fails with
    /// [`FileStoreError::ExposedDirectory`].
    ///
    /// # Example
    /// ```no_run
    /// use session_fs::{ExposedDirectory, FileStore};
    ///
    /// // A directory made by `mkdir` under the usual umask is 0755: make it 0700.
    /// let store = FileStore::builder("./.sessions")
    ///     .exposed_directory(ExposedDirectory::Tighten)
    ///     .open()?;
    /// # Ok::<(), session_fs::FileStoreError>(())
    /// ```
    pub fn exposed_directory(mut self, exposed: ExposedDirectory) -> Self {
        self.exposed = exposed;
        self
    }

    /// Creates the directory if missing (0700), checks who owns it and who else may read
    /// it (see [`FileStoreBuilder::exposed_directory`]), and opens its lock files.
    ///
    /// # Errors
    /// [`FileStoreError::NotOwned`] for a directory that another user owns,
    /// [`FileStoreError::ExposedDirectory`] for a directory other users can list or change,
    /// [`FileStoreError::UnsafeLockPath`] for a link where a lock file goes, and
    /// [`FileStoreError::Io`], naming the path and the step, if the directory or its lock
    /// files cannot be made or read.
    pub fn open(self) -> Result<FileStore, FileStoreError> {
        dir::prepare(&self.dir, self.mode, self.exposed)?;
        let locks = Locks::open(&self.dir.join(".locks"))?;
        dir::prepare_index_dirs(&self.dir)?;
        let dir = Dir::new(&self.dir, self.mode);
        let count = match self.limit {
            Some(_) => {
                let mut count = 0;
                dir.for_each_session(|_, _| {
                    count += 1;
                    ControlFlow::Continue(())
                })
                .map_err(OpenStep::CountSessions.on(&self.dir))?;
                count
            }
            None => 0,
        };
        Ok(FileStore {
            inner: Arc::new(Inner {
                dir,
                limit: self.limit,
                count: AtomicUsize::new(count),
                locks,
                io: self.io,
            }),
        })
    }
}

impl FileStore {
    /// Opens a store in `dir` with the default settings, creating the directory if missing.
    ///
    /// # Errors
    /// As [`FileStoreBuilder::open`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, FileStoreError> {
        Self::builder(dir).open()
    }

    /// A builder for a store in `dir`, finished by [`open`](FileStoreBuilder::open).
    pub fn builder(dir: impl Into<PathBuf>) -> FileStoreBuilder {
        FileStoreBuilder {
            dir: dir.into(),
            mode: 0o600,
            limit: None,
            io: IoThread::Caller,
            exposed: ExposedDirectory::Refuse,
        }
    }

    /// Removes the files of expired sessions ([`Store::delete_expired`]) every `interval`
    /// on the current tokio runtime, until the returned handle is dropped; failures are
    /// logged and the next round tries again.
    ///
    /// Nothing else removes them: a session is absent once it has expired, but its file
    /// stays until a cleanup (or the [limit](FileStoreBuilder::limit)) removes it.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    ///
    /// # Example
    /// ```no_run
    /// use std::time::Duration;
    /// use session_fs::FileStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_fs::FileStoreError> {
    /// let store = FileStore::open("./.sessions")?;
    /// let cleanup = store.spawn_cleanup(Duration::from_secs(600));
    /// // ... serve requests; the cleanup stops when `cleanup` is dropped.
    /// # drop(cleanup);
    /// # Ok(()) }
    /// ```
    pub fn spawn_cleanup(&self, interval: Duration) -> Cleanup {
        session_core::spawn_cleanup(self.clone(), interval)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.inner.dir.path()
    }

    /// Runs `work` on tokio's blocking pool, for a store opened with
    /// [`FileStoreBuilder::io_thread`].
    async fn offloaded<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|join| StoreError::backend(BACKEND, join))?
    }
}

/// Runs the file I/O of one operation, `|inner| work`: on the calling thread with the
/// borrowed arguments, or, with [`IoThread::BlockingPool`], on tokio's blocking pool with owned copies
/// of the arguments listed after `owning`. Only that second path pays for the copies.
macro_rules! file_io {
    ($store:expr, |$inner:ident| $work:expr $(, owning $($arg:ident),+)?) => {{
        let store: &FileStore = $store;
        if store.inner.io == IoThread::BlockingPool {
            $($(let $arg = $arg.to_owned();)+)?
            store
                .offloaded(move |$inner| {
                    $($(let $arg = &$arg;)+)?
                    $work
                })
                .await
        } else {
            let $inner: &Inner = &store.inner;
            $work
        }
    }};
}

/// What a session's name holds. Nobody can load an expired or foreign file, so a create
/// may replace either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    Absent,
    /// Not a session file (see [`Entry::Foreign`]), so not counted towards the limit.
    Foreign,
    Expired,
    Live,
}

fn io_error(error: io::Error) -> StoreError {
    StoreError::backend(BACKEND, error)
}

impl Inner {
    /// What is in the file `name` at `now`.
    fn state(&self, name: &str, now: SystemTime) -> io::Result<FileState> {
        Ok(match self.dir.read_header(name)? {
            Entry::Absent => FileState::Absent,
            Entry::Foreign => FileState::Foreign,
            Entry::Session(header) if header.is_live(now) => FileState::Live,
            Entry::Session(_) => FileState::Expired,
        })
    }

    /// A complete session file under a temporary name, removed again if it is dropped
    /// before it is renamed into place.
    fn write_temp(
        &self,
        value: &[u8],
        expires_at: SystemTime,
        revision: Revision,
    ) -> io::Result<TempFile<'_>> {
        // One write: the header and the record are a few hundred bytes together.
        let mut contents = Vec::with_capacity(HEADER_LEN + value.len());
        contents.extend_from_slice(&Header::new(value.len(), expires_at, revision).to_bytes());
        contents.extend_from_slice(value);
        self.dir.write_temp(&contents)
    }

    fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<Revision, StoreError> {
        let name = file_name(key);
        let now = SystemTime::now();
        let temp = self.prepare_new(key, &name, value, expires_at, now)?;
        // A new id is 256 random bits, so its name is free but for a vanishing chance. A
        // rename that refuses to replace makes that common case atomic without the key's
        // lock: every locked operation then sees either no file or this whole live one.
        let before = self.locks.before_new(&name);
        let temp = match temp.rename_unless_exists(&name).map_err(io_error)? {
            None => {
                self.count.fetch_add(1, Ordering::Relaxed);
                self.locks
                    .remember_new(&name, unix_millis(expires_at), Revision::FIRST, before);
                return Ok(Revision::FIRST);
            }
            Some(temp) => temp,
        };
        // Something is there (or the filesystem cannot refuse to replace): a live session
        // keeps its name, any other file may be replaced; both decided under the lock.
        let mut guard = self.locks.lock(&name).map_err(io_error)?;
        self.replace_dead(&mut guard, &name, temp, expires_at, now)
    }

    /// What a create does before its file goes into place: room under the limit, the key
    /// kept aside if its file name is shortened (see [`Dir::keep_key`]), and the new file
    /// under a temporary name, at [`Revision::FIRST`].
    fn prepare_new(
        &self,
        key: &StoreKey,
        name: &str,
        value: &[u8],
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TempFile<'_>, StoreError> {
        if self
            .limit
            .is_some_and(|limit| self.count.load(Ordering::Relaxed) >= limit)
        {
            self.make_room(now).map_err(io_error)?;
        }
        if is_shortened(name) {
            self.dir.keep_key(name, key.as_str()).map_err(io_error)?;
        }
        self.write_temp(value, expires_at, Revision::FIRST)
            .map_err(io_error)
    }

    /// Puts the new session file `temp` at `name`, which something already holds, under
    /// the key's lock (`guard`): `DuplicateId` if that is a live session, else it is
    /// replaced.
    fn replace_dead(
        &self,
        guard: &mut Guard<'_>,
        name: &str,
        temp: TempFile<'_>,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<Revision, StoreError> {
        let state = self.state(name, now).map_err(io_error)?;
        if state == FileState::Live {
            return Err(StoreError::DuplicateId);
        }
        guard.before_write().map_err(io_error)?;
        temp.rename_over(name).map_err(io_error)?;
        guard.wrote(name, unix_millis(expires_at), Revision::FIRST);
        if state != FileState::Expired {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Revision::FIRST)
    }

    /// `create`, with the session's entry in the index of `user` made first. Both happen
    /// under the key's lock, which a listing takes to prune an entry: it then finds either
    /// no entry yet or the entry and the live session, never an entry whose session is
    /// still to come, which it would prune for good.
    fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        let name = file_name(key);
        let now = SystemTime::now();
        let temp = self.prepare_new(key, &name, value, expires_at, now)?;
        let user = user_dir_name(user);
        let mut guard = self.locks.lock(&name).map_err(io_error)?;
        let bound = self.dir.bind(&user, &name).map_err(io_error)?;
        guard.before_write().map_err(io_error)?;
        let Some(temp) = temp.rename_unless_exists(&name).map_err(io_error)? else {
            guard.wrote(&name, unix_millis(expires_at), Revision::FIRST);
            self.count.fetch_add(1, Ordering::Relaxed);
            return Ok(Revision::FIRST);
        };
        let replaced = self.replace_dead(&mut guard, &name, temp, expires_at, now);
        if bound && matches!(replaced, Err(StoreError::DuplicateId)) {
            // The live session that was there is not this user's: the entry made for it
            // goes, still under the lock, so no listing has seen it.
            self.dir.unbind(&user, &name).map_err(io_error)?;
            self.dir.remove_index_if_empty(&user);
        }
        replaced
    }

    fn unbind(&self, user: &UserKey, key: &StoreKey) -> io::Result<()> {
        let user = user_dir_name(user);
        if self.dir.unbind(&user, &file_name(key))? {
            self.dir.remove_index_if_empty(&user);
        }
        Ok(())
    }

    /// The live sessions in the index of `user`, read without touching them; entries of
    /// absent, expired or foreign files are pruned.
    fn list_bound(&self, user: &UserKey) -> io::Result<Vec<Listed>> {
        let user = user_dir_name(user);
        let mut listed = Vec::new();
        let mut kept = 0;
        for name in self.dir.index(&user)? {
            let now = SystemTime::now();
            match self.dir.read_session(&name)? {
                Stored::Session(header, value) if header.is_live(now) => {
                    kept += 1;
                    match self.key_of(&name)? {
                        Some(key) => listed.push(Listed::new(key, value, header.expires_at())),
                        None => tracing::warn!(
                            backend = BACKEND,
                            "bound session with a shortened file name and no key file skipped"
                        ),
                    }
                }
                _ => {
                    if !self.prune(&user, &name)? {
                        kept += 1;
                    }
                }
            }
        }
        if kept == 0 {
            self.dir.remove_index_if_empty(&user);
        }
        Ok(listed)
    }

    /// Takes the session file `name` out of the index `user` (a directory name) unless,
    /// under the key's lock, it holds a live session after all; whether it did.
    fn prune(&self, user: &str, name: &str) -> io::Result<bool> {
        let _guard = self.locks.lock(name)?;
        if self.state(name, SystemTime::now())? == FileState::Live {
            return Ok(false);
        }
        self.dir.unbind(user, name)?;
        Ok(true)
    }

    /// Prunes every index of entries whose session is gone, and removes the indexes left
    /// empty: the cleanup's share of the work that listing a user's sessions does for one.
    fn prune_indexes(&self) -> io::Result<()> {
        for user in self.dir.indexes()? {
            let mut kept = 0;
            for name in self.dir.index(&user)? {
                let live = match self.dir.read_header(&name)? {
                    Entry::Session(header) => header.is_live(SystemTime::now()),
                    Entry::Absent | Entry::Foreign => false,
                };
                if live || !self.prune(&user, &name)? {
                    kept += 1;
                }
            }
            if kept == 0 {
                self.dir.remove_index_if_empty(&user);
            }
        }
        Ok(())
    }

    /// The key of the session file `name`: from the name itself, or, for a shortened
    /// one, from the key kept aside when it was created (checked against the name).
    fn key_of(&self, name: &str) -> io::Result<Option<StoreKey>> {
        let key = if is_shortened(name) {
            self.dir
                .kept_key(name)?
                .filter(|key| file_name(&StoreKey::from_stored(key.as_str())) == name)
        } else {
            key_from_name(name)
        };
        Ok(key.map(StoreKey::from_stored))
    }

    /// The keys (with their file names) of the sessions live now whose keys are session
    /// keys under `prefix` and sort after `after`, in no order.
    fn live_keys(&self, prefix: &str, after: Option<&str>) -> io::Result<Vec<(String, String)>> {
        let now = SystemTime::now();
        let selected =
            |key: &str| is_session_key(prefix, key) && after.is_none_or(|after| key > after);
        let mut found = Vec::new();
        let mut shortened = Vec::new();
        self.dir.for_each_session(|name, header| {
            if header.is_live(now) {
                if is_shortened(&name) {
                    shortened.push(name);
                } else if let Some(key) = key_from_name(&name).filter(|key| selected(key)) {
                    found.push((key, name));
                }
            }
            ControlFlow::Continue(())
        })?;
        // Their keys are in files of their own, read once the walk is done.
        for name in shortened {
            if let Some(key) = self.key_of(&name)? {
                if selected(key.as_str()) {
                    found.push((key.as_str().to_owned(), name));
                }
            }
        }
        Ok(found)
    }

    fn count(&self, prefix: &str) -> io::Result<u64> {
        Ok(self.live_keys(prefix, None)?.len() as u64)
    }

    /// The live sessions under `prefix` in the order of their keys, from the first after
    /// `after`: the directory is walked again for each page, and a page ends with its last
    /// key as the cursor.
    fn scan_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> io::Result<ScanPage> {
        let limit = limit.max(1);
        let mut keys = self.live_keys(prefix, after)?;
        keys.sort_unstable();
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next = if more {
            keys.last().map(|(key, _)| ScanCursor::new(key.as_str()))
        } else {
            None
        };
        let mut records = Vec::with_capacity(keys.len());
        for (key, name) in keys {
            // Gone or expired since the walk: not live through the scan, so left out.
            if let Stored::Session(header, value) = self.dir.read_session(&name)? {
                if header.is_live(SystemTime::now()) {
                    records.push(Listed::new(
                        StoreKey::from_stored(key),
                        value,
                        header.expires_at(),
                    ));
                }
            }
        }
        Ok(ScanPage { records, next })
    }

    fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        let name = file_name(key);
        let mut guard = self.locks.lock(&name).map_err(io_error)?;
        self.check_revision(&mut guard, &name, revision)?;
        let next = revision.next();
        guard.before_write().map_err(io_error)?;
        let written = self
            .write_temp(value, expires_at, next)
            .and_then(|temp| temp.rename_over(&name));
        match written {
            Ok(()) => {
                guard.wrote(&name, unix_millis(expires_at), next);
                Ok(next)
            }
            // The directory itself is gone, and every session with it.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                guard.forget(&name);
                Err(StoreError::UnknownId)
            }
            Err(e) => Err(io_error(e)),
        }
    }

    fn delete_if_unchanged(&self, key: &StoreKey, revision: Revision) -> Result<(), StoreError> {
        let name = file_name(key);
        let mut guard = self.locks.lock(&name).map_err(io_error)?;
        self.check_revision(&mut guard, &name, revision)?;
        // Known at that revision, yet gone: removed by hand (see the crate docs).
        if !self.remove(&mut guard, &name).map_err(io_error)? {
            return Err(StoreError::UnknownId);
        }
        Ok(())
    }

    /// Checks, under the key's lock (`guard`), that the file `name` holds a live session
    /// at `expected`: `UnknownId` if it holds none, `Conflict` with the session as it is
    /// if it is at another revision. The header is read unless the stripe knows the
    /// revision (see `locks`).
    fn check_revision(
        &self,
        guard: &mut Guard<'_>,
        name: &str,
        expected: Revision,
    ) -> Result<(), StoreError> {
        let now = SystemTime::now();
        if guard
            .known_revision(name, unix_millis(now))
            .map_err(io_error)?
            == Some(expected)
        {
            return Ok(());
        }
        match self.dir.read_header(name).map_err(io_error)? {
            Entry::Session(header) if header.is_live(now) => {
                if header.revision() == expected {
                    Ok(())
                } else {
                    // A second read, for the session as it is: the lock keeps it so.
                    match self.read_live(name, now)? {
                        Some(current) => Err(StoreError::conflict_with(current)),
                        None => Err(StoreError::UnknownId),
                    }
                }
            }
            Entry::Session(_) | Entry::Foreign => Err(StoreError::UnknownId),
            Entry::Absent => {
                guard.forget(name);
                Err(StoreError::UnknownId)
            }
        }
    }

    /// Moves the expiry of the live session under `key`, under the key's lock, by writing
    /// the header's expiry field in place (the revision stays); `UnknownId` if there is
    /// none, so a deleted or expired session is never brought back. Whether it is live is
    /// read from the file's header unless the stripe knows (see `locks`).
    fn touch(&self, key: &StoreKey, expires_at: SystemTime) -> Result<(), StoreError> {
        let name = file_name(key);
        let mut guard = self.locks.lock(&name).map_err(io_error)?;
        let now = SystemTime::now();
        let known = guard
            .is_known_live(&name, unix_millis(now))
            .map_err(io_error)?;
        if !known && self.state(&name, now).map_err(io_error)? != FileState::Live {
            return Err(StoreError::UnknownId);
        }
        // Other processes may remember an expiry this moves earlier: they must look again.
        guard.before_write().map_err(io_error)?;
        let (offset, bytes) = Header::expiry_field(expires_at);
        let written = self
            .dir
            .open_for_writing(&name)
            .and_then(|file| file.write_all_at(&bytes, offset));
        match written {
            Ok(()) => {
                guard.touched(&name, unix_millis(expires_at));
                Ok(())
            }
            // Known live, yet gone: removed by hand (see the crate docs).
            Err(e) if e.kind() == ErrorKind::NotFound => {
                guard.forget(&name);
                Err(StoreError::UnknownId)
            }
            Err(e) => Err(io_error(e)),
        }
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        let name = file_name(key);
        let mut guard = self.locks.lock(&name).map_err(io_error)?;
        self.remove(&mut guard, &name).map_err(io_error)?;
        Ok(())
    }

    /// Removes the file `name`, whose stripe `guard` holds, and tells the stripe; `false`
    /// if there was none.
    fn remove(&self, guard: &mut Guard<'_>, name: &str) -> io::Result<bool> {
        if !self.dir.remove(name)? {
            guard.forget(name);
            return Ok(false);
        }
        // Saturating: another process may have created the file we counted.
        let _ = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        guard.removed(name)?;
        if is_shortened(name) {
            // Best effort: a key file left behind only takes room, and names nothing live.
            let _ = self.dir.forget_key(name);
        }
        Ok(true)
    }

    fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.read_live(&file_name(key), SystemTime::now())
    }

    /// The session in the file `name`, if it is live at `now`.
    fn read_live(&self, name: &str, now: SystemTime) -> Result<Option<Loaded>, StoreError> {
        let (header, value) = match self.dir.read_session(name).map_err(io_error)? {
            Stored::Session(header, value) => (header, value),
            Stored::Absent => return Ok(None),
            Stored::Foreign => {
                tracing::warn!(
                    backend = BACKEND,
                    "session file without a valid header treated as absent"
                );
                return Ok(None);
            }
        };
        if !header.is_live(now) {
            return Ok(None);
        }
        Ok(Some(
            Loaded::new(value, header.revision()).with_expiry(header.expires_at()),
        ))
    }

    /// Removes expired session files, then prunes the users' indexes and removes the
    /// temporary files of writes that never finished; returns how many session files it
    /// removed.
    fn delete_expired(&self) -> io::Result<u64> {
        let removed = self.delete_expired_files()?;
        self.prune_indexes()?;
        self.dir
            .remove_stale_temps(STALE_TEMP_AGE, SystemTime::now())?;
        Ok(removed)
    }

    /// Removes expired session files; returns how many.
    fn delete_expired_files(&self) -> io::Result<u64> {
        let now = SystemTime::now();
        let mut removed = 0;
        loop {
            let expired = self.scan(DELETE_BATCH, |header| !header.is_live(now))?;
            let done = expired.len() < DELETE_BATCH;
            for (name, _) in expired {
                removed += self.remove_if(&name, |header| !header.is_live(now))? as u64;
            }
            if done {
                return Ok(removed);
            }
        }
    }

    /// Removes `name` under its key's lock if it is still a session file whose header
    /// (re-read under the lock) satisfies `condition`; a file another process just rewrote
    /// is left alone, and so is anything that is not a session file.
    fn remove_if(&self, name: &str, condition: impl Fn(&Header) -> bool) -> io::Result<bool> {
        let mut guard = self.locks.lock(name)?;
        match self.dir.read_header(name)? {
            Entry::Session(header) if condition(&header) => self.remove(&mut guard, name),
            _ => Ok(false),
        }
    }

    /// Up to `max` session files whose header satisfies `select`, with their expiry; the
    /// directory's other entries are skipped (see [`Dir::for_each_session`]).
    fn scan(&self, max: usize, select: impl Fn(&Header) -> bool) -> io::Result<Vec<(String, u64)>> {
        let mut found = Vec::new();
        self.dir.for_each_session(|name, header| {
            if select(&header) {
                found.push((name, unix_millis(header.expires_at())));
                if found.len() >= max {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(found)
    }

    /// Called when a create finds the store full: drops expired sessions, then the ones
    /// closest to expiry, until the store is at 90 % of its limit.
    fn make_room(&self, now: SystemTime) -> io::Result<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        self.delete_expired_files()?;
        let mut all = self.scan(usize::MAX, |_| true)?;
        self.count.store(all.len(), Ordering::Relaxed);
        let target = limit - limit / 10;
        if all.len() < limit {
            return Ok(());
        }
        all.sort_by_key(|(_, expires)| *expires);
        let excess = all.len().saturating_sub(target.min(limit - 1));
        tracing::warn!(
            backend = BACKEND,
            limit,
            evicted = excess,
            "file session store is full; evicting the sessions closest to expiry"
        );
        let cutoff = unix_millis(now);
        for (name, expires) in all.into_iter().take(excess) {
            self.remove_if(&name, |header| {
                unix_millis(header.expires_at()) <= expires.max(cutoff)
            })?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FileStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        file_io!(self, |inner| inner.load(key), owning key)
    }

    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        file_io!(self, |inner| inner.create(key, value, at), owning key, value)
    }

    async fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        file_io!(self, |inner| inner.update(key, value, at, revision), owning key, value)
    }

    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        file_io!(self, |inner| inner.touch(key, at), owning key)
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        file_io!(self, |inner| inner.delete(key), owning key)
    }

    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        file_io!(self, |inner| inner.delete_if_unchanged(key, revision), owning key)
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        file_io!(self, |inner| inner.delete_expired().map_err(io_error))
    }

    async fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        file_io!(self, |inner| inner.create_bound(key, value, at, user), owning key, value, user)
    }

    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        file_io!(self, |inner| inner.unbind(user, key).map_err(io_error), owning user, key)
    }

    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        file_io!(self, |inner| inner.list_bound(user).map_err(io_error), owning user)
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        file_io!(self, |inner| inner.count(prefix).map_err(io_error), owning prefix)
    }

    async fn scan(
        &self,
        prefix: &str,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let after = after.map(|cursor| cursor.as_str().to_owned());
        file_io!(
            self,
            |inner| inner.scan_page(prefix, after.as_deref(), limit).map_err(io_error),
            owning prefix, after
        )
    }
}

/// The code in this crate's README compiles and runs.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
