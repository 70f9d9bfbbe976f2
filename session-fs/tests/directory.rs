//! What `FileStore` asks of its directory: the server's user owns it, nobody else may
//! list it (the names are the session ids), and no link is followed where its lock files
//! go; and what its errors say.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use session_fs::{ExposedDirectory, FileStore, FileStoreError, OpenStep};

use common::scratch_dir;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_directory_others_can_list_is_refused_and_left_as_it_is() {
    for exposed in [0o755, 0o750, 0o705, 0o722, 0o777, 0o1777] {
        let dir = scratch_dir("directory");
        chmod(&dir, exposed);
        match FileStore::open(&dir) {
            Err(FileStoreError::ExposedDirectory { path, mode }) => {
                assert_eq!((path, mode), (dir.clone(), exposed));
            }
            other => panic!("a {exposed:o} directory: expected a refusal, got {other:?}"),
        }
        assert_eq!(mode(&dir), exposed, "a refused directory was changed");
        assert!(
            !dir.join(".locks").exists(),
            "a refused directory was written to"
        );
    }
    // The message names the directory and the way out; `?` turns it into an io::Error.
    let dir = scratch_dir("directory");
    chmod(&dir, 0o755);
    let error = FileStore::open(&dir).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&*dir.to_string_lossy()), "{message}");
    assert!(message.contains("ExposedDirectory::Tighten"), "{message}");
    let io = std::io::Error::from(error);
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
}

#[test]
fn tighten_makes_an_exposed_directory_private() {
    let dir = scratch_dir("directory");
    chmod(&dir, 0o755);
    FileStore::builder(&dir)
        .exposed_directory(ExposedDirectory::Tighten)
        .open()
        .unwrap();
    assert_eq!(mode(&dir), 0o700);
    // Files that the group may read keep the group's read and search bits on the
    // directory, not others' nor the group's write bit.
    let dir = scratch_dir("directory");
    chmod(&dir, 0o777);
    FileStore::builder(&dir)
        .file_mode(0o640)
        .exposed_directory(ExposedDirectory::Tighten)
        .open()
        .unwrap();
    assert_eq!(mode(&dir), 0o750);
}

#[test]
fn a_directory_that_exposes_nothing_more_than_the_files_is_accepted() {
    // Search alone lists no names.
    let dir = scratch_dir("directory");
    chmod(&dir, 0o711);
    FileStore::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o711);
    // Files the group may read anyway.
    let dir = scratch_dir("directory");
    chmod(&dir, 0o750);
    FileStore::builder(&dir).file_mode(0o640).open().unwrap();
    assert_eq!(mode(&dir), 0o750);
    // A directory the store creates is private, whatever is above it.
    let parent = scratch_dir("directory");
    chmod(&parent, 0o755);
    FileStore::open(parent.join("sessions")).unwrap();
    assert_eq!(mode(&parent.join("sessions")), 0o700);
}

#[test]
fn a_link_where_a_lock_file_goes_is_not_followed() {
    let dir = scratch_dir("directory");
    fs::create_dir(dir.join(".locks")).unwrap();
    let elsewhere = scratch_dir("directory");
    // One to a file that does not exist yet (a follower would create it), one to a file
    // that does (a follower would write its counts into it).
    let missing = elsewhere.join("created-through-the-link");
    let existing = elsewhere.join("written-through-the-link");
    fs::write(&existing, b"keep").unwrap();
    std::os::unix::fs::symlink(&missing, dir.join(".locks/00")).unwrap();
    std::os::unix::fs::symlink(&existing, dir.join(".locks/01")).unwrap();
    match FileStore::open(&dir) {
        Err(FileStoreError::UnsafeLockPath { path }) => {
            assert!(path.starts_with(dir.join(".locks")), "{path:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!missing.exists(), "a lock file was created through a link");
    assert_eq!(fs::read(&existing).unwrap(), b"keep");

    // A directory where a lock file goes is refused the same way.
    let dir = scratch_dir("directory");
    fs::create_dir_all(dir.join(".locks/00")).unwrap();
    match FileStore::open(&dir) {
        Err(FileStoreError::UnsafeLockPath { path }) => assert_eq!(path, dir.join(".locks/00")),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Nor is a link in place of the lock directory.
    let dir = scratch_dir("directory");
    std::os::unix::fs::symlink(&elsewhere, dir.join(".locks")).unwrap();
    assert!(matches!(
        FileStore::open(&dir),
        Err(FileStoreError::UnsafeLockPath { .. })
    ));
    assert!(
        !elsewhere.join("00").exists(),
        "lock files made through a link"
    );
}

#[test]
fn a_directory_another_user_owns_is_refused_even_with_tighten() {
    // A private directory that a local user made in advance for a server that runs as
    // root (the tests do: only root may give a directory away).
    // Root could also tighten one that is exposed, but its owner could open it again.
    let dir = scratch_dir("directory");
    for given in [0o700, 0o755] {
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534))
            .expect("chown to uid 65534 (this test needs root)");
        chmod(&dir, given);
        for exposed in [ExposedDirectory::Refuse, ExposedDirectory::Tighten] {
            match FileStore::builder(&dir).exposed_directory(exposed).open() {
                Err(FileStoreError::NotOwned { path, owner, user }) => {
                    assert_eq!((path, owner), (dir.clone(), 65534));
                    assert_eq!(user, fs::metadata(scratch_dir("directory")).unwrap().uid());
                }
                other => panic!("{given:o}, {exposed:?}: expected a refusal, got {other:?}"),
            }
            assert_eq!(mode(&dir), given, "a refused directory was changed");
            assert_eq!(fs::metadata(&dir).unwrap().uid(), 65534);
            assert!(
                !dir.join(".locks").exists(),
                "a refused directory was written to"
            );
        }
    }
    // The message names the directory and the way out.
    let error = FileStore::open(&dir).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&*dir.to_string_lossy()), "{message}");
    assert!(
        message.contains("65534") && message.contains("chown"),
        "{message}"
    );
    let io = std::io::Error::from(error);
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
}

#[test]
fn an_io_error_names_the_path_and_the_step() {
    let dir = scratch_dir("directory");
    fs::write(dir.join("file"), b"not a directory").unwrap();
    let path = dir.join("file/sessions");
    let error = FileStore::open(&path).unwrap_err();
    let message = error.to_string();
    match &error {
        FileStoreError::Io {
            step: OpenStep::CreateDirectory,
            path: failed,
            source,
        } => {
            assert_eq!(failed, &path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(
        message.contains("create the session directory")
            && message.contains(&*path.to_string_lossy()),
        "{message}"
    );
    // Turned into an io::Error, it keeps the kind and the path.
    let io = std::io::Error::from(error);
    assert_eq!(io.kind(), std::io::ErrorKind::NotADirectory);
    assert!(io.to_string().contains(&*path.to_string_lossy()), "{io}");
}
