//! Output directories that appear whole or not at all.
//!
//! A command writes into a temporary sibling of its `--out` directory (`.NAME.partial-PID`) and
//! renames it into place when everything is written; dropping an uncommitted [`Staging`] removes it.
//! An existing `--out` is replaced only when it is empty or holds the output of an earlier run of
//! the same command (its `summary.json` says so), and never when it contains one of the inputs.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::bad_input;

/// The marker every command writes at the top of its `summary.json`.
pub const TOOL: &str = "attnsvm";

/// Check, before any work, that `dest` may receive the output of `command`, and that it contains
/// none of `inputs`.
pub fn check_destination(dest: &Path, command: &str, inputs: &[&Path]) -> Result<()> {
    if dest.file_name().is_none() {
        return Err(bad_input!(
            "--out {}: name a directory to create (not '.', '..' or '/')",
            dest.display()
        ));
    }
    if fs::symlink_metadata(dest).is_err() {
        return Ok(());
    }
    if !dest.is_dir() {
        return Err(bad_input!(
            "--out {}: exists and is not a directory",
            dest.display()
        ));
    }
    let dest_canon = fs::canonicalize(dest).with_context(|| format!("{}", dest.display()))?;
    for input in inputs {
        if let Ok(input_canon) = fs::canonicalize(input) {
            if input_canon.starts_with(&dest_canon) {
                return Err(bad_input!(
                    "--out {}: would replace the input {}; choose another output directory",
                    dest.display(),
                    input.display()
                ));
            }
        }
    }
    let mut entries = fs::read_dir(dest).with_context(|| format!("{}", dest.display()))?;
    if entries.next().is_none() || is_output_of(dest, command) {
        return Ok(());
    }
    Err(bad_input!(
        "--out {}: already exists and is not the output of an earlier `attnsvm {command}`; \
         choose a new directory or remove it",
        dest.display()
    ))
}

/// `true` when `dir/summary.json` marks `dir` as written by `attnsvm <command>`.
fn is_output_of(dir: &Path, command: &str) -> bool {
    let Ok(text) = fs::read_to_string(dir.join("summary.json")) else {
        return false;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    json["tool"] == TOOL && json["command"] == command
}

/// A temporary sibling directory that becomes `dest` on [`Staging::commit`].
pub struct Staging {
    dir: PathBuf,
    dest: PathBuf,
    command: String,
    committed: bool,
}

impl Staging {
    /// Check `dest` again (it may have changed while we computed) and create the staging directory.
    pub fn create(dest: &Path, command: &str) -> Result<Self> {
        check_destination(dest, command, &[])?;
        let abs = std::path::absolute(dest).with_context(|| format!("{}", dest.display()))?;
        let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
            return Err(bad_input!("--out {}: not a directory name", dest.display()));
        };
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let dir = parent.join(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Staging {
            dir,
            dest: dest.to_path_buf(),
            command: command.to_string(),
            committed: false,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Move the staged directory to `dest`, replacing an earlier output of the same command.
    pub fn commit(mut self) -> Result<()> {
        check_destination(&self.dest, &self.command, &[])?;
        let ctx = || format!("moving {} to {}", self.dir.display(), self.dest.display());
        if fs::symlink_metadata(&self.dest).is_ok() {
            // Move the old output aside first, so that `dest` is always either old or new.
            let mut old = self.dir.clone().into_os_string();
            old.push("-old");
            let old = PathBuf::from(old);
            fs::rename(&self.dest, &old).with_context(ctx)?;
            fs::rename(&self.dir, &self.dest).with_context(ctx)?;
            fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        } else {
            fs::rename(&self.dir, &self.dest).with_context(ctx)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Write `value` as pretty JSON (with a trailing newline).
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    attnsvm::data::npy::write_text(path, &text)?;
    Ok(())
}

/// Replace the file `dest` with one written by `write` to a temporary sibling, so a reader never
/// sees it half-written. The temporary name keeps the extension (encoders choose the format by it).
pub fn write_atomically(dest: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dest.with_file_name(format!(".partial-{}-{name}", std::process::id()));
    let result = write(&tmp).and_then(|()| {
        fs::rename(&tmp, dest).with_context(|| format!("moving {} into place", dest.display()))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_staging_leaves_nothing_and_commit_replaces_only_own_outputs() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        {
            let s = Staging::create(&dest, "gen").unwrap();
            fs::write(s.path().join("a.txt"), "x").unwrap();
        }
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);

        let s = Staging::create(&dest, "gen").unwrap();
        write_json(
            &s.path().join("summary.json"),
            &serde_json::json!({"tool": TOOL, "command": "gen"}),
        )
        .unwrap();
        s.commit().unwrap();
        assert!(dest.join("summary.json").is_file());
        // The same command may replace it, another may not, nor may a run whose input lies inside.
        assert!(check_destination(&dest, "gen", &[]).is_ok());
        assert!(check_destination(&dest, "train", &[]).is_err());
        assert!(check_destination(&dest, "gen", &[&dest.join("summary.json")]).is_err());
        let s = Staging::create(&dest, "gen").unwrap();
        write_json(
            &s.path().join("summary.json"),
            &serde_json::json!({"tool": TOOL, "command": "gen", "new": true}),
        )
        .unwrap();
        s.commit().unwrap();
        let text = fs::read_to_string(dest.join("summary.json")).unwrap();
        assert!(text.contains("\"new\": true"));
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
