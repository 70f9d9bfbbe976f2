//! Small filesystems the tests mount, fill up and turn read-only, in a mount namespace of
//! their own: tmpfs, and ext4 on a loop device. Mounting needs root.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use session_testkit::launcher::{dying_with_test, is_root};

/// Fails the test, saying why, when it cannot mount filesystems.
pub(crate) fn require_root(test: &str) {
    assert!(
        is_root(),
        "{test} mounts small filesystems (tmpfs, ext4 on a loop device), which needs root: \
         run it as root, as `cargo xtask test` does on the project's machines"
    );
}

/// A private mount namespace, held by a process that dies with the test: the kernel
/// unmounts everything mounted in it once its last process is gone, so a test killed by
/// SIGKILL, which runs no `Drop`, leaves no mount behind (nor a loop device, which is
/// freed with its filesystem).
///
/// The test reaches the files in it through [`Self::path`], and runs programs in it with
/// [`Self::command`].
pub(crate) struct MountNamespace {
    holder: Child,
}

impl MountNamespace {
    pub(crate) fn new() -> Self {
        let mut unshare = Command::new("unshare");
        unshare.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sleep",
            "infinity",
        ]);
        let holder = dying_with_test(&unshare)
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare(1) runs");
        let namespace = Self { holder };
        // `unshare` makes the mounts private before it runs `sleep`: nothing mounted
        // from then on can reach this process's namespace.
        let comm = format!("/proc/{}/comm", namespace.holder.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
            assert!(
                Instant::now() < deadline,
                "unshare did not set up a mount namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        namespace
    }

    /// `program`, run in the namespace.
    pub(crate) fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--"])
            .arg(program);
        command
    }

    /// `path` as the namespace sees it, for this process's file operations.
    pub(crate) fn path(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap_or(path);
        Path::new(&format!("/proc/{}/root", self.holder.id())).join(relative)
    }

    /// Runs `args` of `program` in the namespace, retrying for a while: the kernel refuses
    /// to make a filesystem read-only while a file on it is open for writing, which a
    /// store's own write can be for an instant.
    fn run(&self, program: &str, args: &[&OsStr]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self
                .command(program)
                .args(args)
                .stderr(Stdio::null())
                .status()
                .unwrap_or_else(|e| panic!("{program} runs: {e}"));
            if status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{program} {args:?} keeps failing ({status})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for MountNamespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// What a remount makes of a filesystem.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Access {
    ReadOnly,
    Writable,
}

/// A tmpfs mounted at a directory of a [`MountNamespace`], gone with it.
pub(crate) struct Tmpfs<'ns> {
    namespace: &'ns MountNamespace,
    path: PathBuf,
}

impl<'ns> Tmpfs<'ns> {
    /// Mounts a tmpfs of `size_kib` KiB, mode 0700, at `path` (created if missing).
    pub(crate) fn mount(namespace: &'ns MountNamespace, path: &Path, size_kib: u32) -> Self {
        std::fs::create_dir_all(namespace.path(path)).expect("a mount point");
        let options = format!("size={size_kib}k,mode=0700");
        namespace.run(
            "mount",
            &[
                "-t".as_ref(),
                "tmpfs".as_ref(),
                "-o".as_ref(),
                options.as_ref(),
                "tmpfs".as_ref(),
                path.as_ref(),
            ],
        );
        Self {
            namespace,
            path: path.to_owned(),
        }
    }

    /// Remounts it read-only or writable.
    pub(crate) fn remount(&self, access: Access) {
        let options = match access {
            Access::ReadOnly => "remount,ro",
            Access::Writable => "remount,rw",
        };
        self.namespace.run(
            "mount",
            &["-o".as_ref(), options.as_ref(), self.path.as_ref()],
        );
    }
}

/// A small ext4 filesystem in an image file, mounted at a directory of a
/// [`MountNamespace`] through a loop device, with `errors=remount-ro`: an error makes
/// the kernel turn it read-only at once, under files open for writing, which a remount
/// cannot do. It stays read-only until it is unmounted.
pub(crate) struct Ext4 {
    /// The loop device's name, such as `loop0`.
    device: String,
    /// Where this process sees the filesystem.
    seen_at: PathBuf,
}

impl Ext4 {
    /// Creates an image of `size_mib` MiB at `image` and mounts it at `path` (created if
    /// missing).
    pub(crate) fn mount(
        namespace: &MountNamespace,
        image: &Path,
        path: &Path,
        size_mib: u64,
    ) -> Self {
        File::create(image)
            .and_then(|file| file.set_len(size_mib << 20))
            .expect("an image file");
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(image)
            .status()
            .expect("mkfs.ext4 runs");
        assert!(status.success(), "mkfs.ext4 {} failed", image.display());
        std::fs::create_dir_all(namespace.path(path)).expect("a mount point");
        namespace.run(
            "mount",
            &[
                "-o".as_ref(),
                "loop,errors=remount-ro".as_ref(),
                image.as_ref(),
                path.as_ref(),
            ],
        );
        let source = namespace
            .command("findmnt")
            .args(["--noheadings", "--output=SOURCE"])
            .arg(path)
            .output()
            .expect("findmnt runs");
        let source = String::from_utf8_lossy(&source.stdout);
        let device = source
            .trim()
            .strip_prefix("/dev/")
            .unwrap_or_else(|| panic!("{} is mounted from {source:?}", path.display()))
            .to_owned();
        Self {
            device,
            seen_at: namespace.path(path),
        }
    }

    /// Makes the kernel see an error on the filesystem (ext4's `trigger_fs_error`), which
    /// turns it read-only.
    pub(crate) fn fail(&self) {
        let trigger = format!("/sys/fs/ext4/{}/trigger_fs_error", self.device);
        std::fs::write(&trigger, "1").unwrap_or_else(|e| panic!("writing {trigger}: {e}"));
        let probe = self.seen_at.join("probe");
        assert!(
            File::create(&probe).is_err(),
            "{} is still writable after an error",
            self.seen_at.display()
        );
    }
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
