//! Why a store could not be opened, and what to do about an exposed directory.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What [`FileStoreBuilder::open`](crate::FileStoreBuilder::open) does with an existing
/// directory that lets other users list or change its entries. Their names are the live
/// session ids, so anyone who can list them can take over every session.
///
/// A directory is exposed when its group or other users have read or write permission on
/// it that [`file_mode`](crate::FileStoreBuilder::file_mode) does not give them on the
/// session files; with the default file mode, `0o600`, that is any read or write bit
/// beyond the owner's. A search-only bit (`0o711`) lists nothing and is accepted.
///
/// # Default
/// [`ExposedDirectory::Refuse`]: you decide who may read your sessions, not the store.
///
/// ```no_run
/// use session_fs::{ExposedDirectory, FileStore};
///
/// let store = FileStore::builder("/var/lib/app/sessions")
///     .exposed_directory(ExposedDirectory::Tighten)
///     .open()?;
/// # Ok::<(), session_fs::FileStoreError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExposedDirectory {
    /// Fails with [`FileStoreError::ExposedDirectory`], leaving the directory as it is.
    #[default]
    Refuse,
    /// Takes away the permissions the session files do not grant (`chmod`): `0o700` with
    /// the default file mode. A directory of another user is refused all the same
    /// ([`FileStoreError::NotOwned`]): its owner could open it again.
    Tighten,
}

/// Why a [`FileStore`](crate::FileStore) could not be opened.
///
/// Converts into an [`io::Error`], so `?` works in a function that returns
/// [`io::Result`].
#[derive(Debug)]
#[non_exhaustive]
pub enum FileStoreError {
    /// A system call on the directory or its lock files failed.
    Io {
        /// What `open` was doing.
        step: OpenStep,
        /// The directory or file it was doing it to.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The directory belongs to another user, who could list the session ids in it or
    /// open it to everyone whatever its mode; [`ExposedDirectory::Tighten`] does not
    /// change this.
    NotOwned {
        /// The directory.
        path: PathBuf,
        /// The user id that owns it.
        owner: u32,
        /// The effective user id of this process, which must own it.
        user: u32,
    },
    /// The directory lets other users list or change its entries, the session ids (see
    /// [`ExposedDirectory`]).
    ExposedDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Where the store keeps its lock files (the `.locks` directory, or a file in it) is a
    /// symbolic link or not a regular file or directory. The store does not follow it:
    /// whoever placed it could make the store create or write a file elsewhere.
    UnsafeLockPath {
        /// The link or other file.
        path: PathBuf,
    },
    /// Where the store keeps its users' indexes (`.users`) or the keys of sessions whose
    /// file names are shortened (`.keys`) is a symbolic link or not a directory. The store
    /// does not follow it: whoever placed it could make the store create files elsewhere.
    UnsafeIndexPath {
        /// The link or other file.
        path: PathBuf,
    },
}

/// What [`FileStoreBuilder::open`](crate::FileStoreBuilder::open) was doing when a
/// system call failed ([`FileStoreError::Io`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenStep {
    /// Creating the session directory (and its missing parents).
    CreateDirectory,
    /// Reading the session directory's owner and mode.
    InspectDirectory,
    /// Taking permissions off the directory ([`ExposedDirectory::Tighten`]).
    TightenDirectory,
    /// Looking at or creating the `.locks` directory.
    PrepareLockDirectory,
    /// Opening or creating a lock file.
    OpenLockFile,
    /// Reading a lock file's counts.
    ReadLockFile,
    /// Counting the sessions already in the directory, for the limit.
    CountSessions,
    /// Looking at or creating the `.users` or `.keys` directory.
    PrepareIndexDirectory,
}

impl OpenStep {
    /// `FileStoreError::Io` for this step on `path`, as a closure for `map_err`.
    pub(crate) fn on(self, path: &std::path::Path) -> impl FnOnce(io::Error) -> FileStoreError {
        let path = path.to_owned();
        move |source| FileStoreError::Io {
            step: self,
            path,
            source,
        }
    }
}

impl fmt::Display for OpenStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreateDirectory => "create the session directory",
            Self::InspectDirectory => "read the owner and mode of the session directory",
            Self::TightenDirectory => "change the mode of the session directory",
            Self::PrepareLockDirectory => "prepare the lock directory",
            Self::OpenLockFile => "open the lock file",
            Self::ReadLockFile => "read the lock file",
            Self::CountSessions => "count the sessions in",
            Self::PrepareIndexDirectory => "prepare the index directory",
        })
    }
}

impl fmt::Display for FileStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { step, path, source } => {
                write!(f, "cannot {step} {}: {source}", path.display())
            }
            Self::NotOwned { path, owner, user } => write!(
                f,
                "session directory {} belongs to user id {owner}, not to the user this \
                 server runs as ({user}), so its owner could list the session ids in it; \
                 give it to the server's user (`chown {user}` and `chmod 700` it), or remove \
                 it and let the store create it",
                path.display()
            ),
            Self::ExposedDirectory { path, mode } => write!(
                f,
                "session directory {} has mode {mode:o}, which lets other users list the \
                 session ids in it or change its files; make it private (chmod 700), or \
                 open the store with `exposed_directory(ExposedDirectory::Tighten)`",
                path.display()
            ),
            Self::UnsafeLockPath { path } | Self::UnsafeIndexPath { path } => write!(
                f,
                "{} is a symbolic link or not a regular file or directory; the session \
                 store does not follow it (remove it to let the store make its own)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for FileStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::NotOwned { .. }
            | Self::ExposedDirectory { .. }
            | Self::UnsafeLockPath { .. }
            | Self::UnsafeIndexPath { .. } => None,
        }
    }
}

/// This error, with the kind of the system's error for [`FileStoreError::Io`],
/// `PermissionDenied` for a directory of another user or an exposed one, and `Other` for a
/// lock or index path. The message keeps the path.
impl From<FileStoreError> for io::Error {
    fn from(error: FileStoreError) -> Self {
        let kind = match &error {
            FileStoreError::Io { source, .. } => source.kind(),
            FileStoreError::NotOwned { .. } | FileStoreError::ExposedDirectory { .. } => {
                io::ErrorKind::PermissionDenied
            }
            FileStoreError::UnsafeLockPath { .. } | FileStoreError::UnsafeIndexPath { .. } => {
                io::ErrorKind::Other
            }
        };
        io::Error::new(kind, error)
    }
}
