//! Private files: everything under a data directory is readable by its owner only (files
//! 0600, directories 0700), since the key-value logs hold subscription secrets and the
//! object store holds every uploaded file. New files and directories are created that way,
//! and [`tighten`] fixes what an older version (or a permissive umask) left behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Mode of every file under a data directory.
pub(super) const FILE_MODE: u32 = 0o600;
/// Mode of every directory under a data directory (the directory itself included).
pub(super) const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its missing parents) and makes it owner-only.
pub(super) fn private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    set_mode(dir, DIR_MODE)
}

/// Opens `path` for appending (and reading), creating it owner-only; an existing file is
/// made owner-only too.
pub(super) fn open_append(path: &Path) -> io::Result<File> {
    let file = options().create(true).append(true).read(true).open(path)?;
    set_mode(path, FILE_MODE)?;
    Ok(file)
}

/// Creates (or truncates) `path` for writing, owner-only.
pub(super) fn create(path: &Path) -> io::Result<File> {
    let file = options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    set_mode(path, FILE_MODE)?;
    Ok(file)
}

/// The same as [`create`], for tokio.
pub(super) async fn create_async(path: &Path) -> io::Result<tokio::fs::File> {
    let mut opts = tokio::fs::OpenOptions::new();
    opts.create(true).write(true).truncate(true);
    #[cfg(unix)]
    opts.mode(FILE_MODE);
    let file = opts.open(path).await?;
    set_mode(path, FILE_MODE)?;
    Ok(file)
}

/// Replaces `path` with `data` whole: written to a temporary file next to it, synced, and
/// renamed into place (so a crash leaves the old file or the new one, never half of one).
pub(super) fn replace(
    path: &Path,
    data: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = path.with_extension("compacting");
    let written = (|| {
        let mut file = create(&tmp)?;
        data(&mut file)?;
        file.flush()?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(path);
    Ok(())
}

/// Makes a rename in `path`'s directory durable where the platform allows it.
pub(super) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

/// Makes `dir` and everything under it owner-only (files 0600, directories 0700). Symbolic
/// links are left alone (their targets are not ours to change).
pub(super) fn tighten(dir: &Path) -> io::Result<()> {
    set_mode(dir, DIR_MODE)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            tighten(&entry.path())?;
        } else if kind.is_file() {
            set_mode(&entry.path(), FILE_MODE)?;
        }
    }
    Ok(())
}

fn options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(FILE_MODE);
    }
    opts
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Off Unix there are no owner-only mode bits to set; the platform's defaults stay.
#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
