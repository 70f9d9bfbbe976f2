//! Small filesystems the tests mount, fill up and turn read-only: tmpfs, which needs root.

use std::fs::File;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::servers::is_root;

/// Fails the test, saying why, when it cannot mount filesystems.
pub(crate) fn require_root(test: &str) {
    assert!(
        is_root(),
        "{test} mounts small filesystems (tmpfs), which needs root: run it as root, as \
         `cargo xtask test` does on the project's machines"
    );
}

/// A tmpfs mounted at a directory, unmounted when dropped.
pub(crate) struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB, mode 0700, at `path` (created if missing).
    pub(crate) fn mount(path: &Path, size_kib: u32) -> Self {
        std::fs::create_dir_all(path).expect("a mount point");
        let options = format!("size={size_kib}k,mode=0700");
        mount(&["-t", "tmpfs", "-o", &options, "tmpfs"], path);
        Self {
            path: path.to_owned(),
        }
    }

    /// Remounts it read-only (`ro`) or writable (`rw`). The kernel refuses to make a
    /// filesystem read-only while a file on it is open for writing, which a store's own
    /// write can be for an instant: that is retried.
    pub(crate) fn remount(&self, mode: &str) {
        let options = format!("remount,{mode}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = Command::new("mount")
                .args(["-o", &options])
                .arg(&self.path)
                .stderr(Stdio::null())
                .status()
                .expect("mount(8) runs");
            if status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mount -o {options} {} keeps failing",
                self.path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("mount")
            .args(["-o", "remount,rw"])
            .arg(&self.path)
            .stderr(Stdio::null())
            .status();
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process of a failed test holds a file): detach it now, the
            // kernel frees it when the last file closes.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

fn mount(args: &[&str], path: &Path) {
    let status = Command::new("mount")
        .args(args)
        .arg(path)
        .status()
        .expect("mount(8) runs");
    assert!(status.success(), "mount {args:?} {} failed", path.display());
}

/// A file that takes up all the free space of a filesystem until it is removed.
pub(crate) struct Filler {
    path: PathBuf,
}

impl Filler {
    /// Writes `path` until the filesystem is full.
    pub(crate) fn fill(path: &Path) -> Self {
        let mut file = File::create(path).expect("a filler file");
        let block = [0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        Self {
            path: path.to_owned(),
        }
    }

    /// Removes the file: the space is back.
    pub(crate) fn remove(self) {
        std::fs::remove_file(&self.path).expect("the filler file is removed");
    }
}
