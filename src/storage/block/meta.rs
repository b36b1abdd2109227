//! `meta.json`: the block's identity, time range, statistics, compaction
//! lineage, file sizes and a CRC32C over the file's own bytes.
//!
//! The checksum is the last field, written as 8 lowercase hex digits. It is
//! computed over the exact file bytes with those 8 digits replaced by `0`s,
//! so any flipped byte (even in whitespace) is detected.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::storage::api::StorageError;

/// Current `meta.json` version.
pub(crate) const META_VERSION: u32 = 1;
/// Value of the `magic` field.
pub(crate) const META_MAGIC: &str = "watchpost-block";
const CRC_KEY: &str = "\"crc32c\": \"";

/// Sample and series counts of a block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    /// Stored series (a histogram counts once).
    pub num_series: u64,
    /// Float samples.
    pub num_float_samples: u64,
    /// Histogram samples (one per histogram timestamp).
    pub num_histogram_samples: u64,
    /// Chunks (index chunk entries).
    pub num_chunks: u64,
}

/// Where a block came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    /// 1 for a block cut from the head, max(parents) + 1 after compaction.
    pub level: u32,
    /// Ids of the level-1 blocks whose data this block holds (sorted). A
    /// block whose sources are all covered by another block is obsolete.
    pub sources: Vec<String>,
}

/// One file of the block and its size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockFile {
    /// Name relative to the block directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// The contents of `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Always [`META_MAGIC`].
    pub magic: String,
    /// Format version, [`META_VERSION`].
    pub version: u32,
    /// Block id (the directory name).
    pub id: String,
    /// Earliest timestamp the block covers (ms, inclusive).
    pub min_time: i64,
    /// End of the covered range (ms, exclusive).
    pub max_time: i64,
    /// Counts.
    pub stats: BlockStats,
    /// Lineage.
    pub compaction: Compaction,
    /// `columns` and `index` with their sizes.
    pub files: Vec<BlockFile>,
    /// CRC32C of the file, see the module doc.
    pub crc32c: String,
}

impl BlockMeta {
    /// Total bytes of the block's data files (meta.json excluded).
    pub fn data_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Serializes `meta` with its checksum filled in.
pub(crate) fn encode_meta(meta: &BlockMeta) -> Vec<u8> {
    let mut m = meta.clone();
    m.crc32c = "00000000".into();
    // Serializing plain structs of strings and integers cannot fail.
    let mut bytes = serde_json::to_vec_pretty(&m).unwrap_or_default();
    bytes.push(b'\n');
    let crc = crc32c::crc32c(&bytes);
    if let Some(pos) = find_crc(&bytes) {
        bytes.splice(pos..pos + 8, format!("{crc:08x}").into_bytes());
    }
    bytes
}

/// Position of the 8 checksum digits in a serialized meta.
fn find_crc(bytes: &[u8]) -> Option<usize> {
    let key = CRC_KEY.as_bytes();
    let start = bytes.windows(key.len()).rposition(|w| w == key)? + key.len();
    (bytes.len() >= start + 8).then_some(start)
}

/// Parses and verifies `meta.json` bytes (`path` is for errors).
pub(crate) fn decode_meta(path: &Path, bytes: &[u8]) -> Result<BlockMeta, StorageError> {
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|e| {
        corrupt(
            0,
            format!(
                "invalid meta.json at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    if meta.magic != META_MAGIC {
        return Err(corrupt(
            0,
            format!("bad magic {:?}, want {META_MAGIC:?}", meta.magic),
        ));
    }
    if meta.version != META_VERSION {
        return Err(corrupt(
            0,
            format!(
                "unsupported meta version {}, want {META_VERSION}",
                meta.version
            ),
        ));
    }
    let pos = find_crc(bytes).ok_or_else(|| corrupt(0, "no crc32c field".into()))?;
    let mut zeroed = bytes.to_vec();
    zeroed.splice(pos..pos + 8, *b"00000000");
    let got = format!("{:08x}", crc32c::crc32c(&zeroed));
    if bytes.get(pos..pos + 8) != Some(got.as_bytes()) || meta.crc32c != got {
        return Err(corrupt(
            pos as u64,
            format!(
                "checksum mismatch: stored {:?}, computed {got}",
                meta.crc32c
            ),
        ));
    }
    if meta.max_time < meta.min_time {
        return Err(corrupt(
            0,
            format!(
                "max_time {} before min_time {}",
                meta.max_time, meta.min_time
            ),
        ));
    }
    Ok(meta)
}

/// Reads and verifies `<dir>/meta.json`.
pub(crate) fn read_meta(path: &Path) -> Result<BlockMeta, StorageError> {
    let bytes = std::fs::read(path).map_err(|source| StorageError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    decode_meta(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BlockMeta {
        BlockMeta {
            magic: META_MAGIC.into(),
            version: META_VERSION,
            id: "01ABCDEFGHJKMNPQRSTVWXYZ00".into(),
            min_time: 0,
            max_time: 7_200_000,
            stats: BlockStats {
                num_series: 2,
                num_float_samples: 10,
                num_histogram_samples: 3,
                num_chunks: 2,
            },
            compaction: Compaction {
                level: 1,
                sources: vec!["01ABCDEFGHJKMNPQRSTVWXYZ00".into()],
            },
            files: vec![BlockFile {
                name: "index".into(),
                size: 100,
            }],
            crc32c: String::new(),
        }
    }

    #[test]
    fn round_trip_and_every_flip_detected() {
        let b = encode_meta(&meta());
        let got = decode_meta(Path::new("meta.json"), &b).unwrap();
        assert_eq!(got.stats, meta().stats);
        assert_eq!(got.crc32c.len(), 8);
        let text = String::from_utf8(b.clone()).unwrap();
        assert!(
            text.starts_with("{\n  \"magic\": \"watchpost-block\",\n  \"version\": 1,"),
            "{text}"
        );
        for i in 0..b.len() {
            for x in [0x01, 0x20, 0xff] {
                let mut c = b.clone();
                c[i] ^= x;
                assert!(
                    decode_meta(Path::new("m"), &c).is_err(),
                    "flip {x:#x} at {i}"
                );
            }
        }
    }
}
