//! Per-key locks that hold within a process and across processes sharing the directory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Enough stripes that unrelated sessions rarely wait for each other.
const STRIPES: usize = 64;

/// Striped locks: stripe `n` is a mutex (threads of this process) around an open lock
/// file `.locks/n` whose `flock` excludes other processes. Both are needed: `flock` is
/// held per open file, so it does not exclude two threads sharing one.
#[derive(Debug)]
pub(crate) struct Locks {
    stripes: Vec<Mutex<File>>,
}

/// Holds one stripe; releases the `flock` and then the mutex when dropped.
pub(crate) struct Guard<'a> {
    file: MutexGuard<'a, File>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Closing is not an option (the file is reused), and an unlock that fails leaves
        // the lock to be released when the process exits; nothing better can be done here.
        let _ = self.file.unlock();
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
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(dir.join(format!("{n:02}")))
                    .map(Mutex::new)
            })
            .collect::<io::Result<_>>()?;
        Ok(Self { stripes })
    }

    /// Locks the stripe of the session file `name`.
    pub(crate) fn lock(&self, name: &str) -> io::Result<Guard<'_>> {
        let stripe = &self.stripes[stripe(name)];
        // Every critical section leaves the file in a consistent state before it can
        // panic, so a poisoned mutex is still usable.
        let file = stripe.lock().unwrap_or_else(PoisonError::into_inner);
        file.lock()?;
        Ok(Guard { file })
    }
}

/// FNV-1a: stable across builds and processes, unlike std's hasher.
fn stripe(name: &str) -> usize {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % STRIPES as u64) as usize
}
