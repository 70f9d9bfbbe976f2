//! The MongoDB-compatible server for machines without `mongod`: mongoeco, pinned, in a
//! virtualenv under `target/xtask/`, launched by `xtask/services/mongoeco_server.py`.

use std::path::PathBuf;
use std::process::Command;

use crate::process::{on_path, run, state_dir};

/// The pinned package; the launcher's shims are written against this version.
const PACKAGE: &str = "mongoeco[wire]==4.11.0";

/// mongoeco needs Python 3.13 or later.
const CHECK_VERSION: &str = "import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)";

/// The virtualenv's python, with mongoeco installed (once; about 30 s the first time).
pub(crate) fn prepare() -> Result<PathBuf, String> {
    let venv = state_dir().join("mongoeco-venv");
    let python = venv.join("bin").join("python");
    let marker = venv.join(format!(".installed {PACKAGE}"));
    if marker.exists() && python.exists() {
        return Ok(python);
    }
    let base = find_python()?;
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new(&base).args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        PACKAGE,
    ]))?;
    std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    Ok(python)
}

/// A Python 3.13+: on PATH, or in pyenv's versions (Debian's python3 is 3.11).
fn find_python() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = ["python3.14", "python3.13", "python3"]
        .into_iter()
        .filter(|p| on_path(p))
        .map(PathBuf::from)
        .collect();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")));
    if let Some(versions) = pyenv.map(|p| p.join("versions")) {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&versions)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin").join("python"))
            .filter(|python| python.exists())
            .collect();
        found.sort();
        found.reverse(); // newest first, by name
        candidates.extend(found);
    }
    candidates
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", CHECK_VERSION])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or_else(|| {
            "no MongoDB server: `mongod` is not installed, and mongoeco needs Python 3.13 or later \
             (not found on PATH or in ~/.pyenv/versions); install one, or set SESSION_TEST_MONGODB_URL"
                .to_owned()
        })
}
