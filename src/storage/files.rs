//! Every on-disk file and directory name and every magic number the storage
//! writes, in one place (layout: storage-format.md section 1).

/// Subdirectory of the data dir holding WAL segments and checkpoints.
pub(crate) const WAL_DIR: &str = "wal";
/// Lock file in the data dir; holds an exclusive `flock` while a `Db` is open.
pub(crate) const LOCK_FILE: &str = "lock";
/// Subdirectory of the data dir holding snapshots.
pub(crate) const SNAPSHOTS_DIR: &str = "snapshots";
/// Prefix of a WAL checkpoint file name: `checkpoint.<8-digit segment>`.
pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";
/// Suffix of a file or directory being written; removed on open if found.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Magic bytes opening every WAL segment and checkpoint file.
pub(crate) const WAL_MAGIC: [u8; 4] = *b"WPWL";
/// WAL format version written in the segment header.
pub(crate) const WAL_VERSION: u8 = 1;

/// File name of WAL segment `n` (zero-padded so names sort numerically).
pub(crate) fn segment_name(n: u64) -> String {
    format!("{n:08}")
}

/// Parses a WAL segment file name (8 or more decimal digits).
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    if name.len() >= 8 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// File name of the checkpoint that replaces every segment below `n`.
pub(crate) fn checkpoint_name(n: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{n:08}")
}

/// Parses a checkpoint file name.
pub(crate) fn parse_checkpoint_name(name: &str) -> Option<u64> {
    name.strip_prefix(CHECKPOINT_PREFIX)
        .and_then(parse_segment_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(7), "00000007");
        assert_eq!(parse_segment_name("00000007"), Some(7));
        assert_eq!(parse_segment_name("0000007"), None);
        assert_eq!(parse_segment_name("checkpoint.00000007"), None);
        assert_eq!(checkpoint_name(12), "checkpoint.00000012");
        assert_eq!(parse_checkpoint_name("checkpoint.00000012"), Some(12));
        assert_eq!(parse_checkpoint_name("checkpoint.00000012.tmp"), None);
    }
}
