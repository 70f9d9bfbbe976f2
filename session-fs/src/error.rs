//! Why a store could not be built, and what to do about an exposed directory.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What [`FileStoreBuilder::build`](crate::FileStoreBuilder::build) does with an existing
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
///     .build()?;
/// # Ok::<(), session_fs::FileStoreError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExposedDirectory {
    /// Fails with [`FileStoreError::ExposedDirectory`], leaving the directory as it is.
    #[default]
    Refuse,
    /// Takes away the permissions the session files do not grant (`chmod`): `0o700` with
    /// the default file mode. Fails with [`FileStoreError::Io`] if the process may not
    /// change the directory's mode (it does not own it).
    Tighten,
}

/// Why a [`FileStore`](crate::FileStore) could not be built.
///
/// Converts into an [`io::Error`], so `?` works in a function that returns
/// [`io::Result`].
#[derive(Debug)]
#[non_exhaustive]
pub enum FileStoreError {
    /// Creating, checking or opening the directory or its lock files failed.
    Io(io::Error),
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
}

impl fmt::Display for FileStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "cannot prepare the session directory: {error}"),
            Self::ExposedDirectory { path, mode } => write!(
                f,
                "session directory {} has mode {mode:o}, which lets other users list the \
                 session ids in it or change its files; make it private (chmod 700), or \
                 build the store with `exposed_directory(ExposedDirectory::Tighten)`",
                path.display()
            ),
            Self::UnsafeLockPath { path } => write!(
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
            Self::Io(error) => Some(error),
            Self::ExposedDirectory { .. } | Self::UnsafeLockPath { .. } => None,
        }
    }
}

impl From<io::Error> for FileStoreError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// The I/O error itself for [`FileStoreError::Io`]; the others wrapped, with kind
/// `PermissionDenied` for an exposed directory and `Other` for a lock path.
impl From<FileStoreError> for io::Error {
    fn from(error: FileStoreError) -> Self {
        match error {
            FileStoreError::Io(error) => error,
            exposed @ FileStoreError::ExposedDirectory { .. } => {
                io::Error::new(io::ErrorKind::PermissionDenied, exposed)
            }
            other => io::Error::other(other),
        }
    }
}
