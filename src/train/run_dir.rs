//! A training run's folder and the rules that keep a run from being lost or mixed with another.
//!
//! - One writer at a time: the session holds an OS file lock on `train.lock` for its whole life.
//!   A second session on the same folder is refused with the holder's pid, start time and
//!   command (read from the lock file). The OS drops the lock when the holder dies, even by
//!   SIGKILL, so a crashed run never blocks its own `--resume`.
//! - A folder that holds a run is never silently reused: starting afresh there is an error
//!   unless the caller resumes it or asks to overwrite it, and overwriting removes only what a
//!   run writes (refusing when anything else is there).
//! - Temp files (`NAME.<pid>.tmp`) are only ever written under the lock, so once the lock is ours
//!   any left are from a killed writer and are removed, and the caller is told.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::fsio::TEMP_SUFFIX;
use super::TrainError;

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = "train.lock";
/// What a training run writes into its folder (and all that `Overwrite` removes).
pub const RUN_FILES: [&str; 3] = ["metrics.jsonl", "summary.json", "checkpoints"];

/// What to do with a run folder that may hold a run already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// Start a new run; a folder holding one is an error.
    #[default]
    New,
    /// Continue the run in the folder from its newest checkpoint.
    Resume,
    /// Remove the run in the folder (only the files a run writes), then start a new one.
    Overwrite,
}

/// An open, locked run folder. The lock is released when this is dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: File,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TrainError {
    let path = path.display().to_string();
    move |source| TrainError::Io { path, source }
}

impl RunDir {
    /// Creates (if needed) and locks `path`, removes stale temp files and applies `mode`.
    /// Returns the folder and what was done that the user should hear about.
    pub fn open(path: &Path, mode: RunMode) -> Result<(Self, Vec<String>), TrainError> {
        fs::create_dir_all(path).map_err(io_err(path))?;
        let lock = lock(path)?;
        let mut notices = Vec::new();
        let stale = remove_stale_temps(path)?;
        if !stale.is_empty() {
            notices.push(format!(
                "removed {} temp file(s) left by an interrupted run: {}",
                stale.len(),
                stale.join(", ")
            ));
        }
        let present = run_files(path)?;
        match mode {
            RunMode::Resume => {}
            RunMode::New if !present.is_empty() => {
                return Err(TrainError::RunExists {
                    path: path.display().to_string(),
                    found: present.join(", "),
                })
            }
            RunMode::New => {}
            RunMode::Overwrite => {
                if let Some(other) = foreign_entry(path)? {
                    return Err(TrainError::Setup(format!(
                        "--overwrite removes only what a training run writes ({}), but {} also holds `{other}`: move it away or choose another output folder",
                        RUN_FILES.join(", "),
                        path.display()
                    )));
                }
                for name in &present {
                    let p = path.join(name.trim_end_matches('/'));
                    let removed = if p.is_dir() {
                        fs::remove_dir_all(&p)
                    } else {
                        fs::remove_file(&p)
                    };
                    removed.map_err(io_err(&p))?;
                }
                if !present.is_empty() {
                    notices.push(format!(
                        "--overwrite: removed the previous run's {} from {}",
                        present.join(", "),
                        path.display()
                    ));
                }
            }
        }
        Ok((
            Self {
                path: path.to_path_buf(),
                _lock: lock,
            },
            notices,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the folder's lock and writes who holds it, or says who does.
fn lock(dir: &Path) -> Result<File, TrainError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            // Best effort: the holder may be between truncating and writing its line.
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(TrainError::RunInUse {
                path: dir.display().to_string(),
                holder: if holder.is_empty() {
                    "another process".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err(&path)(e)),
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let command: Vec<String> = std::env::args().collect();
    let line = format!(
        "pid {} since {} UTC: {}\n",
        std::process::id(),
        crate::eval::report::utc(secs),
        command.join(" ")
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(line.as_bytes()))
        .map_err(io_err(&path))?;
    Ok(file)
}

/// A temp file as `fsio::temp_path` names them, `NAME.<pid>.tmp`; a user's own `x.tmp` is not.
fn is_writer_temp(name: &str) -> bool {
    name.strip_suffix(TEMP_SUFFIX)
        .and_then(|rest| rest.rsplit_once('.'))
        .is_some_and(|(stem, pid)| {
            !stem.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Removes the writers' temp files (`NAME.<pid>.tmp`) in the folder and its `checkpoints/`;
/// returns their names.
fn remove_stale_temps(dir: &Path) -> Result<Vec<String>, TrainError> {
    let mut removed = Vec::new();
    for d in [dir.to_path_buf(), dir.join("checkpoints")] {
        let listing = match fs::read_dir(&d) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&d)(e)),
        };
        for entry in listing {
            let entry = entry.map_err(io_err(&d))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_writer_temp(&name) && entry.path().is_file() {
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                removed.push(
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap_or(&entry.path())
                        .display()
                        .to_string(),
                );
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// The run files present (`checkpoints/` only when it holds something).
fn run_files(dir: &Path) -> Result<Vec<String>, TrainError> {
    let mut found = Vec::new();
    for name in RUN_FILES {
        let p = dir.join(name);
        if p.is_dir() {
            let mut listing = fs::read_dir(&p).map_err(io_err(&p))?;
            if listing.next().is_some() {
                found.push(format!("{name}/"));
            }
        } else if p.exists() {
            found.push(name.to_string());
        }
    }
    Ok(found)
}

/// The first entry of the folder that no training run writes.
fn foreign_entry(dir: &Path) -> Result<Option<String>, TrainError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let name = entry
            .map_err(io_err(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name != LOCK_FILE && !RUN_FILES.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names.into_iter().next())
}
