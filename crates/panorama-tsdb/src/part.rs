//! Immutable part files in `<dir>/parts/`, named `<id:020>.part`:
//!
//! ```text
//! part   := header block* index footer
//! header := "PTSP" version:u8 0 0 0 min_seq:u64le max_seq:u64le covers_wal:u64le   (32 bytes)
//! block  := see `codec`: up to 4096 points of one series, sorted by time, with a CRC
//! index  := count:uvarint entry*                    -- one entry per block, by (series, time)
//! entry  := series_delta:uvarint len:uvarint points:uvarint min_ts:ivarint
//!           (max_ts - min_ts):uvarint last_value    -- the value at max_ts
//! footer := index_offset:u64le index_len:u64le crc32(index):u32le "PTSF"           (24 bytes)
//! ```
//!
//! Blocks follow the header back to back in index order, so offsets are
//! implied. `min_seq..=max_seq` are the flush generations the part holds
//! (one for a flushed part); where parts disagree on a (series, ts), the one
//! with the higher `max_seq` wins. Every WAL segment numbered `covers_wal` or
//! lower is wholly contained in this part and older ones, so replay skips it.
//! A part is written under a `.tmp` name, fsynced, renamed and its directory
//! fsynced: a part file that exists under its final name is complete.

use crate::codec::Decoded;
use crate::codec::{
    BLOCK_POINTS, Reader, ValsRef, corrupt, encode_block, put_ivarint, put_uvarint, put_value,
};
use crate::fsutil::{io_err, read_exact_at, sync_dir};
use crate::rollup::{self, Rollup};
use crate::{TsValue, TsdbError};
use panorama_core::series::Acc;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) const PARTS_DIR: &str = "parts";
const MAGIC: &[u8; 4] = b"PTSP";
const FOOTER_MAGIC: &[u8; 4] = b"PTSF";
/// The newest part version this build writes and reads.
pub(crate) const PART_VERSION: u8 = 1;
const HEADER_LEN: u64 = 32;
const FOOTER_LEN: u64 = 24;

/// Where one block is and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    pub series: u32,
    pub count: u32,
    pub len: u32,
    pub offset: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// An open part: its index in memory, its blocks read on demand.
#[derive(Debug)]
pub(crate) struct Part {
    pub id: u64,
    pub min_seq: u64,
    pub max_seq: u64,
    pub covers_wal: u64,
    /// File size in bytes.
    pub size: u64,
    /// Points held.
    pub points: u64,
    path: PathBuf,
    file: File,
    index: Vec<BlockMeta>,
    /// Hourly rollup of each block (same order as `index`), built when first needed.
    rollups: Vec<OnceLock<Rollup>>,
    /// Bytes held by `rollups`.
    rollup_bytes: AtomicUsize,
}

/// The last value of one series in a part, as found in its index.
pub(crate) type LastValue = (u32, i64, TsValue);

fn empty_rollups(n: usize) -> Vec<OnceLock<Rollup>> {
    (0..n).map(|_| OnceLock::new()).collect()
}

pub(crate) fn part_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.part"))
}

fn tmp_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.part.tmp"))
}

/// Part files in `dir` by id; leftover temp files (a flush cut short) are deleted.
pub(crate) fn list_parts(dir: &Path) -> Result<Vec<(u64, PathBuf)>, TsdbError> {
    let ctx = || format!("listing {}", dir.display());
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(ctx()))? {
        let path = entry.map_err(io_err(ctx()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".part.tmp") {
            std::fs::remove_file(&path).map_err(io_err(format!("deleting {}", path.display())))?;
        } else if let Some(id) = name
            .strip_suffix(".part")
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((id, path));
        }
    }
    out.sort_unstable_by_key(|(id, _)| *id);
    Ok(out)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(..8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

impl Part {
    /// Opens a part and reads its index; also returns each series' last value.
    pub(crate) fn open(path: &Path, id: u64) -> Result<(Part, Vec<LastValue>), TsdbError> {
        let ctx = || format!("reading {}", path.display());
        let bad = |what: &str| corrupt(format!("{}: {what}", path.display()));
        let file = File::open(path).map_err(io_err(ctx()))?;
        let size = file.metadata().map_err(io_err(ctx()))?.len();
        if size < HEADER_LEN + FOOTER_LEN {
            return Err(bad("too short"));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        read_exact_at(&file, &mut header, 0).map_err(io_err(ctx()))?;
        if &header[..4] != MAGIC {
            return Err(bad("not a part file"));
        }
        if header[4] > PART_VERSION {
            return Err(TsdbError::TooNew {
                found: u32::from(header[4]),
                supported: u32::from(PART_VERSION),
            });
        }
        let (min_seq, max_seq, covers_wal) = (
            le_u64(&header[8..]),
            le_u64(&header[16..]),
            le_u64(&header[24..]),
        );
        let mut footer = [0u8; FOOTER_LEN as usize];
        read_exact_at(&file, &mut footer, size - FOOTER_LEN).map_err(io_err(ctx()))?;
        if &footer[20..] != FOOTER_MAGIC {
            return Err(bad("footer missing"));
        }
        let (index_offset, index_len) = (le_u64(&footer), le_u64(&footer[8..]));
        let mut c = [0u8; 4];
        c.copy_from_slice(&footer[16..20]);
        if index_offset < HEADER_LEN
            || index_offset.checked_add(index_len) != Some(size - FOOTER_LEN)
        {
            return Err(bad("index out of bounds"));
        }
        let mut raw = vec![0u8; usize::try_from(index_len).map_err(|_| bad("index too large"))?];
        read_exact_at(&file, &mut raw, index_offset).map_err(io_err(ctx()))?;
        if crc32fast::hash(&raw) != u32::from_le_bytes(c) {
            return Err(bad("index checksum mismatch"));
        }
        let mut r = Reader::new(&raw);
        let n = r.len()?;
        let mut index: Vec<BlockMeta> = Vec::with_capacity(n.min(raw.len()));
        let mut lasts = Vec::new();
        let mut series = 0u32;
        let mut offset = HEADER_LEN;
        let mut points = 0u64;
        for i in 0..n {
            let delta = u32::try_from(r.uvarint()?).map_err(|_| bad("series id over 32 bits"))?;
            series = series
                .checked_add(delta)
                .ok_or_else(|| bad("series id over 32 bits"))?;
            let len = u32::try_from(r.uvarint()?).map_err(|_| bad("block too large"))?;
            let count = u32::try_from(r.uvarint()?).map_err(|_| bad("block too large"))?;
            let min_ts = r.ivarint()?;
            let max_ts = min_ts.wrapping_add(r.uvarint()? as i64);
            let last = r.value()?;
            if i > 0 && delta == 0 && index.last().is_some_and(|b| b.max_ts >= min_ts) {
                return Err(bad("blocks out of order"));
            }
            index.push(BlockMeta {
                series,
                count,
                len,
                offset,
                min_ts,
                max_ts,
            });
            // Keep only the last block's value per series.
            match lasts.last_mut() {
                Some((s, t, v)) if *s == series => {
                    *t = max_ts;
                    *v = last;
                }
                _ => lasts.push((series, max_ts, last)),
            }
            offset += u64::from(len);
            points += u64::from(count);
        }
        if offset != index_offset || !r.is_empty() {
            return Err(bad("index does not match the blocks"));
        }
        Ok((
            Part {
                id,
                min_seq,
                max_seq,
                covers_wal,
                size,
                points,
                path: path.to_path_buf(),
                file,
                rollups: empty_rollups(index.len()),
                index,
                rollup_bytes: AtomicUsize::new(0),
            },
            lasts,
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The blocks of one series, oldest first.
    pub(crate) fn blocks(&self, series: u32) -> &[BlockMeta] {
        let lo = self.index.partition_point(|b| b.series < series);
        let hi = lo
            + self
                .index
                .get(lo..)
                .unwrap_or_default()
                .partition_point(|b| b.series == series);
        self.index.get(lo..hi).unwrap_or_default()
    }

    /// The series with blocks here, ascending.
    pub(crate) fn series_ids(&self) -> impl Iterator<Item = u32> + '_ {
        let mut prev = None;
        self.index.iter().filter_map(move |b| {
            let new = prev != Some(b.series);
            prev = Some(b.series);
            new.then_some(b.series)
        })
    }

    /// Position of a block of this part in its index.
    fn block_index(&self, b: &BlockMeta) -> Option<usize> {
        // Blocks are stored in index order, so offsets ascend with it.
        let i = self.index.partition_point(|x| x.offset < b.offset);
        self.index.get(i).is_some_and(|x| x == b).then_some(i)
    }

    /// The block's hourly rollup, if built.
    pub(crate) fn rollup(&self, b: &BlockMeta) -> Option<&[(i64, Acc)]> {
        let r = self.rollups.get(self.block_index(b)?)?.get()?;
        Some(r)
    }

    /// Builds (once) and returns the block's hourly rollup from the block decoded into `d`.
    pub(crate) fn set_rollup(&self, b: &BlockMeta, d: &Decoded) -> Option<&[(i64, Acc)]> {
        let cell = self.rollups.get(self.block_index(b)?)?;
        let mut built = false;
        let r = cell.get_or_init(|| {
            built = true;
            rollup::build(d)
        });
        if built {
            self.rollup_bytes
                .fetch_add(r.len() * rollup::ENTRY_BYTES, Ordering::Relaxed);
        }
        Some(r)
    }

    /// Bytes of rollups held in memory.
    pub(crate) fn rollup_bytes(&self) -> usize {
        self.rollup_bytes.load(Ordering::Relaxed)
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), TsdbError> {
        read_exact_at(&self.file, buf, offset)
            .map_err(io_err(format!("reading {}", self.path.display())))
    }
}

/// Writes a part: feed it series in ascending order, then `finish`.
pub(crate) struct PartWriter {
    dir: PathBuf,
    id: u64,
    min_seq: u64,
    max_seq: u64,
    covers_wal: u64,
    out: BufWriter<File>,
    offset: u64,
    index: Vec<BlockMeta>,
    index_bytes: Vec<u8>,
    block: Vec<u8>,
    points: u64,
}

impl PartWriter {
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        min_seq: u64,
        max_seq: u64,
        covers_wal: u64,
    ) -> Result<Self, TsdbError> {
        let tmp = tmp_path(dir, id);
        let file = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&[PART_VERSION, 0, 0, 0]);
        for v in [min_seq, max_seq, covers_wal] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&header)
            .map_err(io_err(format!("writing {}", tmp.display())))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            id,
            min_seq,
            max_seq,
            covers_wal,
            out,
            offset: HEADER_LEN,
            index: Vec::new(),
            index_bytes: Vec::new(),
            block: Vec::new(),
            points: 0,
        })
    }

    /// Adds one series (times sorted and distinct), in blocks of up to 4096 points.
    pub(crate) fn add_series(
        &mut self,
        series: u32,
        ts: &[i64],
        vals: ValsRef<'_>,
    ) -> Result<(), TsdbError> {
        let mut start = 0;
        while start < ts.len() {
            let end = (start + BLOCK_POINTS).min(ts.len());
            let (Some(t), Some(&min_ts), Some(&max_ts)) =
                (ts.get(start..end), ts.get(start), ts.get(end - 1))
            else {
                break;
            };
            let (v, last) = match vals {
                ValsRef::Num(v) => {
                    let s = v.get(start..end).unwrap_or_default();
                    (ValsRef::Num(s), s.last().map(|x| TsValue::Number(*x)))
                }
                ValsRef::Any(v) => {
                    let s = v.get(start..end).unwrap_or_default();
                    (ValsRef::Any(s), s.last().cloned())
                }
            };
            let Some(last) = last else { break };
            self.block.clear();
            encode_block(t, v, &mut self.block);
            let len = u32::try_from(self.block.len())
                .map_err(|_| TsdbError::Invalid("block over 4 GiB".into()))?;
            self.out.write_all(&self.block).map_err(io_err(format!(
                "writing {}",
                tmp_path(&self.dir, self.id).display()
            )))?;
            let prev_series = self.index.last().map_or(0, |b| b.series);
            put_uvarint(
                &mut self.index_bytes,
                u64::from(series.wrapping_sub(prev_series)),
            );
            put_uvarint(&mut self.index_bytes, u64::from(len));
            put_uvarint(&mut self.index_bytes, t.len() as u64);
            put_ivarint(&mut self.index_bytes, min_ts);
            put_uvarint(&mut self.index_bytes, max_ts.wrapping_sub(min_ts) as u64);
            put_value(&mut self.index_bytes, &last);
            self.index.push(BlockMeta {
                series,
                count: t.len() as u32,
                len,
                offset: self.offset,
                min_ts,
                max_ts,
            });
            self.offset += u64::from(len);
            self.points += t.len() as u64;
            start = end;
        }
        Ok(())
    }

    /// Gives up: deletes the temporary file.
    pub(crate) fn abandon(self) {
        let tmp = tmp_path(&self.dir, self.id);
        drop(self.out);
        // A leftover is deleted at the next open anyway.
        let _ = std::fs::remove_file(tmp);
    }

    /// Writes index and footer, makes the file durable under its final name and opens it.
    pub(crate) fn finish(mut self) -> Result<Part, TsdbError> {
        let tmp = tmp_path(&self.dir, self.id);
        let path = part_path(&self.dir, self.id);
        let ctx = || format!("writing {}", tmp.display());
        let mut index = Vec::with_capacity(self.index_bytes.len() + 10);
        put_uvarint(&mut index, self.index.len() as u64);
        index.extend_from_slice(&self.index_bytes);
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&self.offset.to_le_bytes());
        footer.extend_from_slice(&(index.len() as u64).to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
        footer.extend_from_slice(FOOTER_MAGIC);
        self.out
            .write_all(&index)
            .and_then(|()| self.out.write_all(&footer))
            .map_err(io_err(ctx()))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_err(ctx())(e.into_error()))?;
        file.sync_all().map_err(io_err(ctx()))?;
        drop(file);
        std::fs::rename(&tmp, &path)
            .map_err(io_err(format!("renaming {} into place", tmp.display())))?;
        sync_dir(&self.dir)?;
        let file = File::open(&path).map_err(io_err(format!("reading {}", path.display())))?;
        let size = self.offset + index.len() as u64 + FOOTER_LEN;
        Ok(Part {
            id: self.id,
            min_seq: self.min_seq,
            max_seq: self.max_seq,
            covers_wal: self.covers_wal,
            size,
            points: self.points,
            path,
            file,
            rollups: empty_rollups(self.index.len()),
            index: self.index,
            rollup_bytes: AtomicUsize::new(0),
        })
    }
}
