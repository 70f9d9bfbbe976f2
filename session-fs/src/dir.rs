//! The session directory and the system calls on its files.
//!
//! Every call goes by the file's full path, not relative to a descriptor of the
//! directory opened once: that would save the kernel a walk of the directory's path per
//! call, but a store would then keep using a directory that was moved away, and one that
//! was deleted (by a temp cleaner, say) would fail every create until a restart, where by
//! path it works again as soon as the directory is back.

use std::ffi::CStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, IoSliceMut, Read as _, Write as _};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use rustix::fs::{FileType, Mode, OFlags};

use crate::error::{ExposedDirectory, FileStoreError, OpenStep};
use crate::layout::{is_session_file, Header, HEADER_LEN};

/// The start of a temporary file's name, which no session file has.
const TEMP_PREFIX: &str = ".tmp-";

/// `O_NOFOLLOW`: a symbolic link put in the directory is never read, written or created
/// through.
pub(crate) const NO_FOLLOW: i32 = OFlags::NOFOLLOW.bits() as i32;

/// The flags of every open of an existing session file: [`NO_FOLLOW`], and `O_NONBLOCK`
/// so that a FIFO put in the directory does not make the open wait for a writer (regular
/// files ignore it).
const EXISTING: OFlags = OFlags::NOFOLLOW.union(OFlags::NONBLOCK);

/// [`EXISTING`], for `OpenOptions`.
const EXISTING_FILE: i32 = EXISTING.bits() as i32;

/// The size of the stack buffer a file's full path is built in, its closing NUL included;
/// a longer path goes on the heap.
const STACK_PATH: usize = 512;

/// The users' indexes: `.users/<user>/<session file name>`, one empty file per session
/// bound to the user. The leading `.` keeps it out of every walk of the sessions.
pub(crate) const USERS: &str = ".users";

/// The keys of the sessions whose file names are shortened: `.keys/<name>` holds the key
/// that the name cannot give back, for listing the session.
pub(crate) const KEYS: &str = ".keys";

/// How many times a bind makes its user's directory again after a concurrent unbind or
/// listing removed it as empty; each retry needs such a removal in between.
const BIND_ATTEMPTS: usize = 16;

/// The longest key file read back: far more than the longest key session-core makes.
const KEY_FILE_MAX: u64 = 4096;

/// What a name in the directory holds, for the store.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Entry {
    /// Nothing.
    Absent,
    /// Something that is not a session file: no session header, or not a regular file.
    Foreign,
    /// A session file, with its header.
    Session(Header),
}

/// The session file at a name, read whole.
#[derive(Debug)]
pub(crate) enum Stored {
    Absent,
    /// Not a session file: not a regular file, no session header, or shorter than its
    /// header says.
    Foreign,
    Session(Header, Vec<u8>),
}

/// Creates the directory at `path` (0700) if it is missing; refuses it if another user
/// owns it; if it lets other users list or change it beyond what files of `file_mode` give
/// them, refuses it or tightens it, as `exposed` says.
pub(crate) fn prepare(
    path: &Path,
    file_mode: u32,
    exposed: ExposedDirectory,
) -> Result<(), FileStoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(OpenStep::CreateDirectory.on(path))?;
    let meta = fs::metadata(path).map_err(OpenStep::InspectDirectory.on(path))?;
    // Its owner may change its mode at any time, and list it whatever the mode says.
    let user = rustix::process::geteuid().as_raw();
    if meta.uid() != user {
        return Err(FileStoreError::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            user,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o066 & !file_mode == 0 {
        return Ok(());
    }
    match exposed {
        ExposedDirectory::Refuse => Err(FileStoreError::ExposedDirectory {
            path: path.to_owned(),
            mode,
        }),
        ExposedDirectory::Tighten => {
            fs::set_permissions(path, fs::Permissions::from_mode(tightened(mode, file_mode)))
                .map_err(OpenStep::TightenDirectory.on(path))
        }
    }
}

/// Creates `.users` and `.keys` in the session directory at `path` (0700) if missing; a
/// link or anything but a directory there is [`FileStoreError::UnsafeIndexPath`], not
/// followed.
pub(crate) fn prepare_index_dirs(path: &Path) -> Result<(), FileStoreError> {
    for sub in [USERS, KEYS] {
        let dir = path.join(sub);
        let failed = OpenStep::PrepareIndexDirectory.on(&dir);
        let meta = match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => make_dir(&dir)
                .and_then(|()| fs::symlink_metadata(&dir))
                .map_err(failed)?,
            other => other.map_err(failed)?,
        };
        if !meta.is_dir() {
            return Err(FileStoreError::UnsafeIndexPath { path: dir });
        }
    }
    Ok(())
}

/// Creates the directory `path` (0700); one that is there already is fine.
fn make_dir(path: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// The directory mode `mode` without what session files of `file_mode` do not grant: the
/// owner's and the special bits stay, and for the group and others only the read and write
/// bits the files give them, with the search bit that reaching the files takes.
fn tightened(mode: u32, file_mode: u32) -> u32 {
    let mut allowed = 0o7700;
    for class in [0o070, 0o007] {
        let granted = file_mode & class & 0o066;
        if granted != 0 {
            allowed |= granted | (class & 0o011);
        }
    }
    mode & allowed
}

/// Most records fit the first read: header and record then take `open`, one `readv` and
/// `close`, where reading to the end takes a `statx` and a second `read` besides.
///
/// Sized to be the largest buffer glibc still serves from its per-thread cache without
/// consolidating its fast bins, so the read stays off the allocator's slow path.
const FIRST_READ: usize = 1000;

/// The session directory, and how files are made in it.
pub(crate) struct Dir {
    path: PathBuf,
    /// `path` and a `/`, as bytes: the start of every file's full path.
    prefix: Vec<u8>,
    /// Permission bits of new files.
    mode: u32,
    /// Whether the process umask takes bits off `mode`, so that each new file needs an
    /// explicit chmod to get them.
    umask_strips_mode: bool,
    /// Whether the directory is on ext4, where preallocating a file keeps `rename` from
    /// writing it out (see [`preallocate`]); elsewhere that is one system call for nothing.
    preallocates: bool,
}

/// `prefix` repeats `path`, as bytes.
impl fmt::Debug for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dir")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("umask_strips_mode", &self.umask_strips_mode)
            .field("preallocates", &self.preallocates)
            .finish()
    }
}

impl Dir {
    /// The existing directory at `path`, whose new files get permission bits `mode`.
    pub(crate) fn new(path: &Path, mode: u32) -> Self {
        let mut prefix = path.as_os_str().as_bytes().to_vec();
        prefix.push(b'/');
        Self {
            path: path.to_owned(),
            prefix,
            preallocates: is_ext4(path),
            mode,
            umask_strips_mode: umask().is_none_or(|mask| mask & mode != 0),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `call` with the full path of the file `name`, built on the stack when it
    /// fits: the calls of every request go by path, and this spares each of them a
    /// `PathBuf` on the heap.
    fn at<T>(&self, name: &str, call: impl FnOnce(&CStr) -> io::Result<T>) -> io::Result<T> {
        let len = self.prefix.len() + name.len();
        let mut stack = [0u8; STACK_PATH];
        let mut heap = Vec::new();
        let buf = if len < STACK_PATH {
            &mut stack[..=len]
        } else {
            heap.resize(len + 1, 0);
            &mut heap[..]
        };
        buf[..self.prefix.len()].copy_from_slice(&self.prefix);
        buf[self.prefix.len()..len].copy_from_slice(name.as_bytes());
        // A name with a NUL in it names no file; the store never makes one.
        let path =
            CStr::from_bytes_with_nul(buf).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
        call(path)
    }

    /// The file `name`, opened with `flags` (and [`NO_FOLLOW`]); `mode` for a new one.
    fn open(&self, name: &str, flags: OFlags, mode: u32) -> io::Result<File> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // `mode_t` is narrower than `u32` on some systems; permission bits fit any of them.
        #[allow(clippy::cast_possible_truncation, clippy::useless_conversion)]
        let mode = Mode::from_raw_mode(mode as rustix::fs::RawMode);
        let fd = self.at(name, |path| {
            Ok(rustix::io::retry_on_intr(|| {
                rustix::fs::open(path, flags, mode)
            })?)
        })?;
        Ok(File::from(fd))
    }

    /// The file `name`, open for writing in place (`touch`).
    pub(crate) fn open_for_writing(&self, name: &str) -> io::Result<File> {
        self.open(name, OFlags::WRONLY | EXISTING, 0)
    }

    /// The file `name`, open for reading.
    fn open_for_reading(&self, name: &str) -> io::Result<File> {
        self.open(name, OFlags::RDONLY | EXISTING, 0)
    }

    /// What the file `name` holds: its header if it is a session file. One shorter than
    /// its header says (a copy cut short) counts as expired, so that what `load` cannot
    /// read, `touch`, `update` and `delete_if_unchanged` cannot find either, and the
    /// cleanup removes it.
    pub(crate) fn read_header(&self, name: &str) -> io::Result<Entry> {
        let mut bytes = [0u8; HEADER_LEN];
        let read = self.open_for_reading(name).and_then(|mut file| {
            let read = read_up_to(&mut file, &mut bytes)?;
            Ok((file, read))
        });
        let (file, read) = match read {
            Ok(read) => read,
            Err(e) => return self.classify(name, e),
        };
        let Some(header) = Header::parse(&bytes[..read]) else {
            return Ok(Entry::Foreign);
        };
        if let Some(record_len) = header.record_len() {
            let whole = HEADER_LEN as u64 + record_len as u64;
            if file.metadata()?.len() < whole {
                return Ok(Entry::Session(header.expired()));
            }
        }
        Ok(Entry::Session(header))
    }

    /// What a failed open or read of `name` means: [`Entry::Absent`] if nothing is there,
    /// [`Entry::Foreign`] if what is there is not a regular file (a link, a directory, a
    /// FIFO with a writer), the error itself otherwise.
    fn classify(&self, name: &str, error: io::Error) -> io::Result<Entry> {
        if error.kind() == ErrorKind::NotFound {
            return Ok(Entry::Absent);
        }
        match self.at(name, |path| Ok(rustix::fs::lstat(path)?)) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Entry::Absent),
            Ok(stat) if !FileType::from_raw_mode(stat.st_mode).is_file() => Ok(Entry::Foreign),
            _ => Err(error),
        }
    }

    /// Calls `visit` with the name and header of each session file in the directory, until
    /// it breaks. Skips everything else without an error: names the store never gives a
    /// session file, entries that are not regular files (directories, FIFOs, links),
    /// files without a session header or that the process may not read, and entries
    /// removed during the scan.
    pub(crate) fn for_each_session(
        &self,
        mut visit: impl FnMut(String, Header) -> ControlFlow<()>,
    ) -> io::Result<()> {
        for name in session_names(fs::read_dir(&self.path)?, fs::FileType::is_file) {
            let name = name?;
            let header = match self.read_header(&name) {
                Ok(Entry::Session(header)) => header,
                Ok(Entry::Absent | Entry::Foreign) => continue,
                // The store makes every file it reads itself; one it may not read is not.
                Err(e) if e.kind() == ErrorKind::PermissionDenied => continue,
                Err(e) => return Err(e),
            };
            if visit(name, header).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Removes the temporary files last changed more than `age` before `now`: a write's
    /// own lives only from its open to its rename, so an old one was left by a process that
    /// died in between. Returns how many it removed; other entries are left alone.
    pub(crate) fn remove_stale_temps(&self, age: Duration, now: SystemTime) -> io::Result<u64> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.path)? {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| n.starts_with(TEMP_PREFIX)) else {
                continue;
            };
            // Not followed through a link: the entry itself must be a regular file.
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let stale = metadata
                .modified()
                .ok()
                .and_then(|changed| now.duration_since(changed).ok())
                .is_some_and(|since| since > age);
            if metadata.is_file() && stale && self.remove(name)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The header and record of the session file `name`. The header into its own buffer
    /// and the record into its `Vec`, by one `readv`, so the record is never moved.
    pub(crate) fn read_session(&self, name: &str) -> io::Result<Stored> {
        let mut header = [0u8; HEADER_LEN];
        // Not `vec![0; n]`: that is `calloc`, which glibc never serves from its
        // per-thread cache, so every read would take the allocator's slow path.
        #[allow(clippy::slow_vector_initialization)]
        let mut record = Vec::with_capacity(FIRST_READ);
        record.resize(FIRST_READ, 0);
        let first = self.open_for_reading(name).and_then(|mut file| {
            let read = file
                .read_vectored(&mut [IoSliceMut::new(&mut header), IoSliceMut::new(&mut record)])?;
            Ok((file, read))
        });
        let (mut file, mut read) = match first {
            Ok(first) => first,
            Err(e) => {
                return Ok(match self.classify(name, e)? {
                    Entry::Absent => Stored::Absent,
                    Entry::Foreign | Entry::Session(_) => Stored::Foreign,
                })
            }
        };
        // A read may stop short of the header only at the end of the file, or after a
        // signal; this finishes the header in both cases.
        if read < HEADER_LEN {
            read += read_up_to(&mut file, &mut header[read..])?;
        }
        let in_header = read.min(HEADER_LEN);
        let Some(parsed) = Header::parse(&header[..in_header]) else {
            return Ok(Stored::Foreign);
        };
        let len = read - in_header;
        match parsed.record_len() {
            // The whole record came with the first read.
            Some(expected) if len >= expected => record.truncate(expected),
            Some(expected) => {
                // The header's length is not trusted with memory: a corrupt one may claim
                // up to 4 GiB. Only the rare record longer than the first read pays for
                // the `statx`.
                let size = file.metadata()?.len();
                let room = size.saturating_sub(HEADER_LEN as u64);
                if u64::try_from(expected).map_or(true, |expected| expected > room) {
                    return Ok(Stored::Foreign);
                }
                record.resize(expected, 0);
                match file.read_exact(&mut record[len..]) {
                    Ok(()) => {}
                    // Shorter than its header says: not a whole session file.
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(Stored::Foreign),
                    Err(e) => return Err(e),
                }
            }
            // A length field of 0 (an empty record, or one too long for the field): to the end.
            None => {
                record.truncate(len);
                file.read_to_end(&mut record)?;
            }
        }
        Ok(Stored::Session(parsed, record))
    }

    /// A complete file of `contents` under a temporary name, removed again if dropped
    /// before it is renamed into place. Written in one `write`, and chmod-ed only when the
    /// umask took bits off the mode.
    pub(crate) fn write_temp(&self, contents: &[u8]) -> io::Result<TempFile<'_>> {
        // Unique across processes (pid) and within one (counter); `O_EXCL` below makes a
        // file of the same name, left by a dead process with this pid or made by one with
        // it in another pid namespace, a reason to take the next name rather than a shared
        // file.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let (temp, mut file) = loop {
            let serial = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}-{serial}", std::process::id());
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
            match self.open(&name, flags, self.mode) {
                Ok(file) => {
                    let temp = TempFile {
                        dir: self,
                        name,
                        renamed: false,
                    };
                    break (temp, file);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        };
        if self.umask_strips_mode {
            file.set_permissions(fs::Permissions::from_mode(self.mode))?;
        }
        if self.preallocates {
            self::preallocate(&file, contents.len() as u64);
        }
        file.write_all(contents)?;
        Ok(temp)
    }

    /// Adds the session file `name` to the index of `user` (a name from
    /// [`user_dir_name`](crate::layout::user_dir_name)): creates its empty entry, and the
    /// user's directory if missing. Creating a file in a directory that a concurrent
    /// [`Dir::remove_index_if_empty`] removed fails with `NotFound`, so the entry is never
    /// lost: the directory is made again and the entry with it. `false` if the entry was
    /// there already.
    pub(crate) fn bind(&self, user: &str, name: &str) -> io::Result<bool> {
        let users = self.path.join(USERS);
        let index = users.join(user);
        let entry = index.join(name);
        let mut attempts = 0;
        loop {
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(NO_FOLLOW)
                .open(&entry);
            match created {
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
                Err(e) if e.kind() == ErrorKind::NotFound && attempts < BIND_ATTEMPTS => {
                    attempts += 1;
                    make_dir(&users)?;
                    make_dir(&index)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes the session file `name` out of the index of `user`; `false` if it was not
    /// there.
    pub(crate) fn unbind(&self, user: &str, name: &str) -> io::Result<bool> {
        match fs::remove_file(self.path.join(USERS).join(user).join(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the index of `user` if it holds nothing. `rmdir` removes only an empty
    /// directory, and a bind into one removed meanwhile makes it again (see
    /// [`Dir::bind`]), so no entry is lost.
    pub(crate) fn remove_index_if_empty(&self, user: &str) {
        // Best effort: it fails when an entry is there, and an empty directory left
        // behind costs nothing but its inode.
        let _ = fs::remove_dir(self.path.join(USERS).join(user));
    }

    /// The session file names in the index of `user`: regular files with a name the store
    /// gives a session; nothing if there is no index. Anything else is left alone.
    pub(crate) fn index(&self, user: &str) -> io::Result<Vec<String>> {
        named_entries(&self.path.join(USERS).join(user), fs::FileType::is_file)
    }

    /// The users that have an index (their directory names under `.users`).
    pub(crate) fn indexes(&self) -> io::Result<Vec<String>> {
        named_entries(&self.path.join(USERS), fs::FileType::is_dir)
    }

    /// Keeps `key` in `.keys/<name>`, for a session whose file name `name` is shortened:
    /// written under a temporary name and renamed, so that a reader finds all of it or
    /// nothing.
    pub(crate) fn keep_key(&self, name: &str, key: &str) -> io::Result<()> {
        make_dir(&self.path.join(KEYS))?;
        self.write_temp(key.as_bytes())?
            .rename_over(&format!("{KEYS}/{name}"))
    }

    /// The key kept for the shortened session file name `name`, if there is one.
    pub(crate) fn kept_key(&self, name: &str) -> io::Result<Option<String>> {
        let path = self.path.join(KEYS).join(name);
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(EXISTING_FILE)
            .open(&path);
        let file = match opened {
            Ok(file) if file.metadata()?.is_file() => file,
            // A directory or a FIFO is nobody's key, and neither is a link, which
            // `O_NOFOLLOW` refuses to open.
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => match fs::symlink_metadata(&path) {
                Ok(meta) if !meta.is_file() => return Ok(None),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                _ => return Err(error),
            },
        };
        let mut key = Vec::new();
        file.take(KEY_FILE_MAX).read_to_end(&mut key)?;
        Ok(String::from_utf8(key).ok())
    }

    /// Removes the key kept for the shortened session file name `name`, if any.
    pub(crate) fn forget_key(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path.join(KEYS).join(name)) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes the file `name`; `false` if there was none.
    pub(crate) fn remove(&self, name: &str) -> io::Result<bool> {
        match self.at(name, |path| Ok(rustix::fs::unlink(path)?)) {
            Ok(()) => Ok(true),
            // A directory there is not the store's, so it is no session and stays.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// Reads into `buf` until it is full or the file ends; how many bytes it read. One `read`
/// when the file has them all.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut read = 0;
    while read < buf.len() {
        match file.read(&mut buf[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}

/// A session file under a temporary name, removed when dropped unless renamed into place.
pub(crate) struct TempFile<'a> {
    dir: &'a Dir,
    name: String,
    renamed: bool,
}

impl TempFile<'_> {
    /// Renames the file to `name`, replacing whatever is there.
    pub(crate) fn rename_over(mut self, name: &str) -> io::Result<()> {
        self.dir.at(&self.name, |from| {
            self.dir.at(name, |to| Ok(rustix::fs::rename(from, to)?))
        })?;
        self.renamed = true;
        Ok(())
    }

    /// Renames the file to `name` if nothing is there (`Ok(None)`); gives it back if
    /// something is, or if the filesystem cannot rename without replacing.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn rename_unless_exists(mut self, name: &str) -> io::Result<Option<Self>> {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        use rustix::io::Errno;
        let renamed = self.dir.at(&self.name, |from| {
            self.dir.at(name, |to| {
                Ok(renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE)?)
            })
        });
        match renamed {
            Ok(()) => {
                self.renamed = true;
                Ok(None)
            }
            Err(e) => match Errno::from_io_error(&e) {
                // EINVAL: a filesystem without RENAME_NOREPLACE; ENOSYS: a kernel before 3.15.
                Some(Errno::EXIST | Errno::INVAL | Errno::NOSYS) => Ok(Some(self)),
                _ => Err(e),
            },
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    #[allow(clippy::unnecessary_wraps)]
    pub(crate) fn rename_unless_exists(self, _name: &str) -> io::Result<Option<Self>> {
        Ok(Some(self))
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: a leftover `.tmp-*` file is never read as a session.
            let _ = self.dir.remove(&self.name);
        }
    }
}

/// Gives the file its blocks before it is written. On ext4, renaming a file over another
/// makes the kernel start writing the new file's not-yet-allocated blocks right there, in
/// the `rename` call (`auto_da_alloc`); blocks that are already allocated are left to the
/// normal background writeback, so an update does not wait for the disk queue. The
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

/// The entries of the directory `path` whose name the store gives a session and whose type
/// `kind` accepts; nothing if the directory is not there. Entries that vanish while they
/// are read are skipped.
fn named_entries(path: &Path, kind: fn(&fs::FileType) -> bool) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    session_names(entries, kind).collect()
}

/// The names among `entries` that the store gives a session, of the entries whose type
/// `kind` accepts. Names that are not UTF-8 and entries that vanish while they are read
/// are skipped.
fn session_names(
    entries: fs::ReadDir,
    kind: fn(&fs::FileType) -> bool,
) -> impl Iterator<Item = io::Result<String>> {
    entries.filter_map(move |entry| {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        let name = entry
            .file_name()
            .into_string()
            .ok()
            .filter(|name| is_session_file(name))?;
        match entry.file_type() {
            Ok(found) if kind(&found) => Some(Ok(name)),
            Err(e) if e.kind() != ErrorKind::NotFound => Some(Err(e)),
            _ => None,
        }
    })
}
