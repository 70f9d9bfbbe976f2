//! `FileStore`: sessions as files in a directory, the embedded default.
//!
//! ```no_run
//! use session_fs::FileStore;
//!
//! let store = FileStore::builder("./.sessions")
//!     .file_mode(0o600)
//!     .limit(100_000)
//!     .build()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # On disk
//! One file per session, named after its store key (`session:<id>`; characters that are
//! not safe in a file name are `%XX`-escaped). A file holds a 16-byte header (`SES1`, the
//! record's length as a little-endian `u32`, the expiry as little-endian Unix milliseconds)
//! and then the encoded session, so `tail -c +17 .sessions/session:*` shows the JSON.
//!
//! - Writes are atomic: a temporary file in the same directory, then `rename`.
//! - File I/O runs on the calling thread: a session file is a few hundred bytes in the page
//!   cache, read or written in a few microseconds, far less than handing each operation to
//!   another thread. On a slow or network filesystem, `.offload_io(true)` moves it to
//!   tokio's blocking pool instead.
//! - `touch` rewrites the 8 expiry bytes in place, not the data.
//! - Files are created with mode 0600 (configurable) in a directory created with 0700.
//! - Every change to a stored session happens under a lock striped by key: a mutex within
//!   the process and an advisory `flock` on `.locks/NN` across processes, so two processes
//!   sharing a directory cannot resurrect, overwrite or tear each other's sessions.
//!   Reads take no lock; `rename` makes them see a whole old or a whole new file.
//! - A new session needs no lock on Linux: its file is renamed into place with
//!   `renameat2(RENAME_NOREPLACE)`, which fails if any file has the name, and only then
//!   (a dead file to replace, or a filesystem without the flag) does the lock decide.
//! - Files are written in one `write`, and chmod-ed only when the process umask (read once,
//!   at `build`) would take bits off the requested mode. On ext4 they are preallocated
//!   first (see `preallocate` in the source for why and what it costs).
//! - A read is `open`, one `readv` and `close` for records under about 1 KB: the header
//!   says how long the record is, so there is no `statx` and no read to find the end.
//! - The optional limit is kept with a counter, not a directory scan per write. When a
//!   create finds the store full, expired files are removed, then the sessions closest to
//!   expiry, down to 90 % of the limit; the scan this needs happens once per tenth of the
//!   limit, not once per write. With several processes the counter is resynchronised by
//!   that scan.

mod layout;
mod locks;

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, IoSliceMut, Read as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, FileExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use session_core::time::unix_millis;
use session_core::{Loaded, Store, StoreError, StoreKey};

use crate::layout::{file_name, is_session_file, Header, HEADER_LEN};
use crate::locks::Locks;

const BACKEND: &str = "file";

/// Files are removed in batches of this many between re-reads of the directory listing.
const DELETE_BATCH: usize = 1000;

/// Sessions as files in a directory. Cloning is cheap and shares the directory's state.
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    mode: u32,
    limit: Option<usize>,
    count: AtomicUsize,
    locks: Locks,
    offload: bool,
    /// Whether the process umask takes bits off `mode`, so that each new file needs an
    /// explicit chmod to get them.
    umask_strips_mode: bool,
    /// Whether the directory is on ext4, where preallocating a file keeps `rename` from
    /// writing it out (see [`preallocate`]); elsewhere that is one system call for nothing.
    preallocates: bool,
}

/// Configures a [`FileStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct FileStoreBuilder {
    dir: PathBuf,
    mode: u32,
    limit: Option<usize>,
    offload: bool,
}

impl FileStoreBuilder {
    /// The permission bits of session files (default `0o600`: the server's user only).
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// The most sessions the directory holds (default: no limit). See the crate docs for
    /// what happens when it is reached.
    pub fn limit(mut self, sessions: usize) -> Self {
        self.limit = Some(sessions.max(1));
        self
    }

    /// Runs the file I/O on tokio's blocking pool instead of the calling thread (default
    /// off). Worth it only where a session file can take long to read or write: a
    /// network or a very slow filesystem. See the crate docs for the measurement.
    pub fn offload_io(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }

    /// Creates the directory if missing, and its lock files.
    pub fn build(self) -> io::Result<FileStore> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let locks = Locks::open(&self.dir.join(".locks"))?;
        let count = match self.limit {
            Some(_) => count_sessions(&self.dir)?,
            None => 0,
        };
        let preallocates = is_ext4(&self.dir);
        Ok(FileStore {
            inner: Arc::new(Inner {
                dir: self.dir,
                mode: self.mode,
                limit: self.limit,
                count: AtomicUsize::new(count),
                locks,
                offload: self.offload,
                umask_strips_mode: umask().is_none_or(|mask| mask & self.mode != 0),
                preallocates,
            }),
        })
    }
}

impl FileStore {
    /// A store in `dir` with the default settings.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        Self::builder(dir).build()
    }

    /// A builder for a store in `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> FileStoreBuilder {
        FileStoreBuilder {
            dir: dir.into(),
            mode: 0o600,
            limit: None,
            offload: false,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs `work` on tokio's blocking pool, for a store built with
    /// [`FileStoreBuilder::offload_io`].
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
/// borrowed arguments, or, with `offload_io`, on tokio's blocking pool with owned copies
/// of the arguments listed after `owning`. Only that second path pays for the copies.
macro_rules! file_io {
    ($store:expr, |$inner:ident| $work:expr $(, owning $($arg:ident),+)?) => {{
        let store: &FileStore = $store;
        if store.inner.offload {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    Absent,
    /// Expired, or not a session file: nobody can load it, so it may be replaced.
    Dead,
    Live,
}

fn io_error(error: io::Error) -> StoreError {
    StoreError::backend(BACKEND, error)
}

impl Inner {
    fn path(&self, key: &StoreKey) -> PathBuf {
        self.dir.join(file_name(key))
    }

    /// What is at `path`: nothing, a dead file (expired, or not a session file), or a
    /// live session.
    fn state(&self, path: &Path, now: SystemTime) -> io::Result<FileState> {
        Ok(match read_header(path)? {
            None => FileState::Absent,
            Some(Some(header)) if header.is_live(now) => FileState::Live,
            Some(_) => FileState::Dead,
        })
    }

    /// Writes a complete file next to `path` and renames it into place.
    fn write(&self, path: &Path, value: &[u8], expires_at: SystemTime) -> io::Result<()> {
        self.write_temp(value, expires_at)?.rename_over(path)
    }

    /// A complete session file under a temporary name in the directory, removed again if
    /// it is dropped before it is renamed into place.
    fn write_temp(&self, value: &[u8], expires_at: SystemTime) -> io::Result<TempFile> {
        // Unique across processes (pid) and within one (counter); `create_new` below makes a
        // stale file of the same name an error rather than a shared file.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let serial = NEXT.fetch_add(1, Ordering::Relaxed);
        let temp = TempFile {
            path: self
                .dir
                .join(format!(".tmp-{}-{serial}", std::process::id())),
            renamed: false,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.mode)
            .open(&temp.path)?;
        if self.umask_strips_mode {
            file.set_permissions(fs::Permissions::from_mode(self.mode))?;
        }
        if self.preallocates {
            preallocate(&file, (HEADER_LEN + value.len()) as u64);
        }
        // One write: the header and the record are a few hundred bytes together.
        let mut contents = Vec::with_capacity(HEADER_LEN + value.len());
        contents.extend_from_slice(&Header::new(value.len(), expires_at).to_bytes());
        contents.extend_from_slice(value);
        file.write_all(&contents)?;
        Ok(temp)
    }

    fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let path = self.path(key);
        let now = SystemTime::now();
        if self
            .limit
            .is_some_and(|limit| self.count.load(Ordering::Relaxed) >= limit)
        {
            self.make_room(now).map_err(io_error)?;
        }
        let temp = self.write_temp(value, expires_at).map_err(io_error)?;
        // A new id is 256 random bits, so its name is free but for a vanishing chance. A
        // rename that refuses to replace makes that common case atomic without the key's
        // lock: every locked operation then sees either no file or this whole live one.
        let temp = match temp.rename_unless_exists(&path).map_err(io_error)? {
            None => {
                self.count.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Some(temp) => temp,
        };
        // Something is there (or the filesystem cannot refuse to replace): a live session
        // keeps its name, a dead file may be replaced; both decided under the lock.
        let _guard = self.locks.lock(key).map_err(io_error)?;
        let state = self.state(&path, now).map_err(io_error)?;
        if state == FileState::Live {
            return Err(StoreError::DuplicateId);
        }
        temp.rename_over(&path).map_err(io_error)?;
        if state == FileState::Absent {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.with_live(key, |path| self.write(path, value, expires_at))
    }

    fn touch(&self, key: &StoreKey, expires_at: SystemTime) -> Result<(), StoreError> {
        self.with_live(key, |path| {
            let file = OpenOptions::new().write(true).open(path)?;
            let (offset, bytes) = Header::expiry_field(expires_at);
            file.write_all_at(&bytes, offset)
        })
    }

    /// Runs `change` on the file of the live session under `key`, under the key's lock;
    /// `UnknownId` if there is none, so a deleted or expired session is never brought back.
    fn with_live(
        &self,
        key: &StoreKey,
        change: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        let path = self.path(key);
        let _guard = self.locks.lock(key).map_err(io_error)?;
        if self.state(&path, SystemTime::now()).map_err(io_error)? != FileState::Live {
            return Err(StoreError::UnknownId);
        }
        change(&path).map_err(io_error)
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        let _guard = self.locks.lock(key).map_err(io_error)?;
        self.remove(&self.path(key)).map_err(io_error)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Ok(()) => {
                // Saturating: another process may have created the file we counted.
                let _ = self
                    .count
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(1))
                    });
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        let (header, value) = match read_session(&self.path(key)) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };
        let Some(header) = header else {
            tracing::warn!(
                backend = BACKEND,
                "session file without a valid header treated as absent"
            );
            return Ok(None);
        };
        if !header.is_live(SystemTime::now()) {
            return Ok(None);
        }
        Ok(Some(Loaded::new(value).with_expiry(header.expires_at())))
    }

    /// Removes expired session files; returns how many.
    fn delete_expired(&self) -> io::Result<u64> {
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

    /// Removes `name` under its key's lock if its header (re-read under the lock) still
    /// satisfies `condition`; a file another process just rewrote is left alone.
    fn remove_if(&self, name: &str, condition: impl Fn(&Header) -> bool) -> io::Result<bool> {
        let path = self.dir.join(name);
        let _guard = self.locks.lock_name(name)?;
        let Some(header) = read_header(&path)? else {
            return Ok(false);
        };
        // A file without a valid header is not a session anyone can load: remove it too.
        if header.as_ref().is_none_or(condition) {
            self.remove(&path)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Up to `max` session files whose header satisfies `select`, with their expiry.
    fn scan(&self, max: usize, select: impl Fn(&Header) -> bool) -> io::Result<Vec<(String, u64)>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_session_file(&name) {
                continue;
            }
            let Some(header) = read_header(&entry.path())? else {
                continue;
            };
            let selected = header.as_ref().is_none_or(&select);
            if selected {
                found.push((name, header.map_or(0, |h| unix_millis(h.expires_at()))));
                if found.len() >= max {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Called when a create finds the store full: drops expired sessions, then the ones
    /// closest to expiry, until the store is at 90 % of its limit.
    fn make_room(&self, now: SystemTime) -> io::Result<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        self.delete_expired()?;
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

/// The header of the file at `path`: `None` if there is no file, `Some(None)` if it is
/// not a session file (too short, or without the magic).
fn read_header(path: &Path) -> io::Result<Option<Option<Header>>> {
    let mut bytes = [0u8; HEADER_LEN];
    match File::open(path).and_then(|mut file| file.read_exact(&mut bytes)) {
        Ok(()) => Ok(Some(Header::parse(&bytes))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(Some(None)),
        Err(e) => Err(e),
    }
}

/// Most records fit the first read: header and record then take `open`, one `readv` and
/// `close`, where reading to the end takes a `statx` and a second `read` besides. 1,008
/// bytes keeps the buffer within glibc's per-thread cache.
const FIRST_READ: usize = 1008;

/// The header and record of the session file at `path`; a `None` header if it is not a
/// session file (too short, no magic, shorter than its header says). The header into its
/// own buffer and the record into its `Vec`, by one `readv`, so the record is never moved.
fn read_session(path: &Path) -> io::Result<(Option<Header>, Vec<u8>)> {
    const NOT_A_SESSION: (Option<Header>, Vec<u8>) = (None, Vec::new());
    let mut file = File::open(path)?;
    let mut header = [0u8; HEADER_LEN];
    let mut record = vec![0u8; FIRST_READ];
    let mut read =
        file.read_vectored(&mut [IoSliceMut::new(&mut header), IoSliceMut::new(&mut record)])?;
    // A read may stop short of the header only at the end of the file, or after a signal;
    // this finishes the header in both cases.
    while read < HEADER_LEN {
        match file.read(&mut header[read..])? {
            0 => return Ok(NOT_A_SESSION),
            n => read += n,
        }
    }
    let Some(header) = Header::parse(&header) else {
        return Ok(NOT_A_SESSION);
    };
    let len = read - HEADER_LEN;
    match header.record_len() {
        // The whole record came with the first read.
        Some(expected) if len >= expected => record.truncate(expected),
        Some(expected) => {
            record.resize(expected, 0);
            match file.read_exact(&mut record[len..]) {
                Ok(()) => {}
                // Shorter than its header says: not a whole session file.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(NOT_A_SESSION),
                Err(e) => return Err(e),
            }
        }
        // Written before the header kept the length: to the end.
        None => {
            record.truncate(len);
            file.read_to_end(&mut record)?;
        }
    }
    Ok((Some(header), record))
}

/// A session file under a temporary name, removed when dropped unless renamed into place.
struct TempFile {
    path: PathBuf,
    renamed: bool,
}

impl TempFile {
    /// Renames the file to `path`, replacing whatever is there.
    fn rename_over(mut self, path: &Path) -> io::Result<()> {
        fs::rename(&self.path, path)?;
        self.renamed = true;
        Ok(())
    }

    /// Renames the file to `path` if nothing is there (`Ok(None)`); gives it back if
    /// something is, or if the filesystem cannot rename without replacing.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn rename_unless_exists(mut self, path: &Path) -> io::Result<Option<Self>> {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        use rustix::io::Errno;
        match renameat_with(CWD, &self.path, CWD, path, RenameFlags::NOREPLACE) {
            Ok(()) => {
                self.renamed = true;
                Ok(None)
            }
            // EINVAL: a filesystem without RENAME_NOREPLACE; ENOSYS: a kernel before 3.15.
            Err(Errno::EXIST | Errno::INVAL | Errno::NOSYS) => Ok(Some(self)),
            Err(errno) => Err(errno.into()),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    #[allow(clippy::unnecessary_wraps)]
    fn rename_unless_exists(self, _path: &Path) -> io::Result<Option<Self>> {
        Ok(Some(self))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: a leftover `.tmp-*` file is never read as a session.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Gives the file its blocks before it is written. On ext4, renaming a file over another
/// makes the kernel start writing the new file's not-yet-allocated blocks right there, in
/// the `rename` call (`auto_da_alloc`); blocks that are already allocated are left to the
/// normal background writeback, and an update no longer waits for the disk queue. The
/// price: after a power loss an updated file may read as zeros, which fails the header
/// check, so that session is treated as absent. Failure (a filesystem without fallocate)
/// only loses the optimisation.
fn preallocate(file: &File, len: u64) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (file, len);
}

/// Whether `dir` is on ext4, the filesystem whose `rename` writes out a replacing file's
/// delayed blocks (`auto_da_alloc`).
fn is_ext4(dir: &Path) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        const EXT4_SUPER_MAGIC: u64 = 0xEF53;
        rustix::fs::statfs(dir).is_ok_and(|fs| fs.f_type as u64 == EXT4_SUPER_MAGIC)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = dir;
        false
    }
}

/// The process umask, where the system tells it without changing it (Linux's
/// `/proc/self/status`). A mask that cannot be read is assumed to strip bits.
fn umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

fn count_sessions(dir: &Path) -> io::Result<usize> {
    let mut count = 0;
    for entry in fs::read_dir(dir)? {
        if entry?.file_name().to_str().is_some_and(is_session_file) {
            count += 1;
        }
    }
    Ok(count)
}

#[async_trait]
impl Store for FileStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        file_io!(self, |inner| inner.load(key), owning key)
    }

    async fn create(&self, key: &StoreKey, value: &[u8], at: SystemTime) -> Result<(), StoreError> {
        file_io!(self, |inner| inner.create(key, value, at), owning key, value)
    }

    async fn update(&self, key: &StoreKey, value: &[u8], at: SystemTime) -> Result<(), StoreError> {
        file_io!(self, |inner| inner.update(key, value, at), owning key, value)
    }

    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        file_io!(self, |inner| inner.touch(key, at), owning key)
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        file_io!(self, |inner| inner.delete(key), owning key)
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        file_io!(self, |inner| inner.delete_expired().map_err(io_error))
    }
}

/// The code in this crate's README compiles and runs.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
