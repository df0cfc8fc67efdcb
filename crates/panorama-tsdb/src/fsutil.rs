//! Small file-system helpers: error context, directory fsync, positional reads.

use crate::TsdbError;
use std::fs::File;
use std::io;
use std::path::Path;

/// Wraps an I/O error with what was being done.
pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> TsdbError {
    let context = context.into();
    move |source| TsdbError::Io { context, source }
}

/// Makes a directory's entries (creations, renames, deletions) durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> Result<(), TsdbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("syncing directory {}", dir.display())))
}

/// Directory entries cannot be synced through std on this platform.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> Result<(), TsdbError> {
    Ok(())
}

/// Fills `buf` from `offset` without moving a shared cursor.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fills `buf` from `offset` without moving a shared cursor.
#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = buf.get_mut(n..).unwrap_or_default();
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `contents` to `path` atomically and durably (temp file, fsync, rename, directory fsync).
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), TsdbError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let ctx = || format!("writing {}", path.display());
    let mut f = File::create(&tmp).map_err(io_err(ctx()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(io_err(ctx()))?;
    std::fs::rename(&tmp, path).map_err(io_err(ctx()))?;
    sync_dir(dir)
}
