//! The one place that memory-maps files. Block files are immutable once
//! their directory has been renamed into place, which is what makes reading
//! them through a shared map sound.

use std::path::Path;

use memmap2::Mmap;

use crate::storage::api::StorageError;

/// Maps `path` read-only. An empty file yields an empty map.
///
/// The returned map stays valid after the file is unlinked (Linux keeps the
/// inode alive until the last mapping goes away), which is what lets
/// retention delete a block directory while queries still read it.
pub(crate) fn map_file(path: &Path) -> Result<Mmap, StorageError> {
    let io = |op, source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| io("open", e))?;
    // SAFETY: the map is read-only and the file belongs to an immutable block:
    // watchpost writes block files only inside a temporary directory, fsyncs
    // them and renames the directory into place, and never opens them for
    // writing afterwards. Deletion (unlink) does not invalidate an existing
    // map. Modification by another process would violate this contract; the
    // per-section CRCs catch corruption that happens before open, and every
    // later read is bounds-checked, so even then no read leaves the map.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| io("mmap", e))?;
    Ok(map)
}
