//! The write-ahead log: numbered segments in `<dir>/wal/`, each
//!
//! ```text
//! segment := "PTSW" version:u32le record*
//! record  := len:u32le crc32(payload):u32le payload
//! payload := count:uvarint point*
//! point   := series:uvarint ts_delta:ivarint value      -- ts delta from the previous point (0 first)
//! ```
//!
//! One record holds one group commit (every request the writer drained at
//! once), so a crash keeps or loses whole groups. A record that is cut short
//! or fails its CRC at the end of the last segment was never acknowledged
//! (acknowledgement follows the fdatasync) and is cut off at open.

use crate::codec::{Reader, corrupt, put_ivarint, put_uvarint, put_value};
use crate::fsutil::{io_err, sync_dir};
use crate::{Point, TsdbError};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub(crate) const WAL_DIR: &str = "wal";
const MAGIC: &[u8; 4] = b"PTSW";
/// The newest segment version this build writes and reads.
pub(crate) const WAL_VERSION: u32 = 1;
/// Bytes before the first record of a segment.
pub(crate) const HEADER_LEN: u64 = 8;
const RECORD_HEADER: usize = 8;

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// Segments in `dir`, oldest first.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, TsdbError> {
    let ctx = || format!("listing {}", dir.display());
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(ctx()))? {
        let path = entry.map_err(io_err(ctx()))?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort_unstable_by_key(|(s, _)| *s);
    Ok(out)
}

/// Deletes every segment numbered `upto` or lower; returns the bytes freed.
pub(crate) fn remove_upto(dir: &Path, upto: u64) -> Result<u64, TsdbError> {
    let mut freed = 0;
    let mut any = false;
    for (seq, path) in list_segments(dir)? {
        if seq > upto {
            break;
        }
        freed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(&path).map_err(io_err(format!("deleting {}", path.display())))?;
        any = true;
    }
    if any {
        sync_dir(dir)?;
    }
    Ok(freed)
}

/// Encodes one record (header included) for `count` points into `buf`.
pub(crate) fn encode_record<'a>(
    points: impl Iterator<Item = &'a Point>,
    count: usize,
    buf: &mut Vec<u8>,
) -> Result<(), TsdbError> {
    buf.clear();
    buf.extend_from_slice(&[0; RECORD_HEADER]);
    put_uvarint(buf, count as u64);
    let mut prev = 0i64;
    for p in points {
        put_uvarint(buf, u64::from(p.series));
        put_ivarint(buf, p.ts.wrapping_sub(prev));
        prev = p.ts;
        put_value(buf, &p.value);
    }
    let payload = buf.get(RECORD_HEADER..).unwrap_or_default();
    let len = u32::try_from(payload.len())
        .map_err(|_| TsdbError::Invalid("a write group is larger than 4 GiB".into()))?;
    let crc = crc32fast::hash(payload);
    if let Some(h) = buf.get_mut(..RECORD_HEADER) {
        h[..4].copy_from_slice(&len.to_le_bytes());
        h[4..].copy_from_slice(&crc.to_le_bytes());
    }
    Ok(())
}

fn decode_payload(payload: &[u8]) -> Result<Vec<Point>, TsdbError> {
    let mut r = Reader::new(payload);
    let n = r.len()?;
    let mut points = Vec::with_capacity(n.min(payload.len()));
    let mut ts = 0i64;
    for _ in 0..n {
        let series = u32::try_from(r.uvarint()?).map_err(|_| corrupt("series id over 32 bits"))?;
        ts = ts.wrapping_add(r.ivarint()?);
        points.push(Point {
            series,
            ts,
            value: r.value()?,
        });
    }
    if !r.is_empty() {
        return Err(corrupt("trailing bytes in a WAL record"));
    }
    Ok(points)
}

/// What a replay found in one segment.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Length of the segment up to the end of its last complete record.
    pub good_len: u64,
    /// Length of the file.
    pub file_len: u64,
}

/// Feeds every complete record of a segment to `f`, stopping at the first
/// torn or damaged one.
pub(crate) fn replay(path: &Path, mut f: impl FnMut(Vec<Point>)) -> Result<Scan, TsdbError> {
    let data = std::fs::read(path).map_err(io_err(format!("reading {}", path.display())))?;
    let file_len = data.len() as u64;
    let Some(header) = data.get(..HEADER_LEN as usize) else {
        return Ok(Scan {
            good_len: 0,
            file_len,
        });
    };
    if &header[..4] != MAGIC {
        return Err(corrupt(format!("{} is not a WAL segment", path.display())));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&header[4..]);
    let version = u32::from_le_bytes(v);
    if version > WAL_VERSION {
        return Err(TsdbError::TooNew {
            found: version,
            supported: WAL_VERSION,
        });
    }
    let mut pos = HEADER_LEN as usize;
    while let Some(h) = data.get(pos..pos + RECORD_HEADER) {
        let mut a = [0u8; 4];
        a.copy_from_slice(&h[..4]);
        let len = u32::from_le_bytes(a) as usize;
        a.copy_from_slice(&h[4..]);
        let crc = u32::from_le_bytes(a);
        let start = pos + RECORD_HEADER;
        let Some(payload) = data.get(start..start + len) else {
            break;
        };
        if len == 0 || crc32fast::hash(payload) != crc {
            break;
        }
        let points = decode_payload(payload)
            .map_err(|e| corrupt(format!("{} at offset {pos}: {e}", path.display())))?;
        f(points);
        pos = start + len;
    }
    Ok(Scan {
        good_len: pos as u64,
        file_len,
    })
}

/// Why an append failed, and whether the segment can still be used.
#[derive(Debug)]
pub(crate) struct AppendError {
    pub error: TsdbError,
    /// The file is in an unknown state (a failed fdatasync, or a partial
    /// write that could not be cut off): nothing more may be written.
    pub poisoned: bool,
}

/// The open segment the writer thread appends to.
#[derive(Debug)]
pub(crate) struct WalWriter {
    dir: PathBuf,
    seq: u64,
    file: File,
    len: u64,
    since_rotate: u64,
}

impl WalWriter {
    /// Creates segment `seq` (durably: header, fsync, directory fsync).
    pub(crate) fn create(dir: &Path, seq: u64) -> Result<Self, TsdbError> {
        let path = segment_path(dir, seq);
        let ctx = || format!("creating {}", path.display());
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(ctx()))?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&WAL_VERSION.to_le_bytes());
        file.write_all(&header)
            .and_then(|()| file.sync_all())
            .map_err(io_err(ctx()))?;
        sync_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            seq,
            file,
            len: HEADER_LEN,
            since_rotate: 0,
        })
    }

    /// Continues segment `seq` after its last complete record, cutting off a torn tail.
    pub(crate) fn reopen(dir: &Path, seq: u64, scan: &Scan) -> Result<Self, TsdbError> {
        if scan.good_len < HEADER_LEN {
            return Self::create(dir, seq);
        }
        let path = segment_path(dir, seq);
        let ctx = || format!("reopening {}", path.display());
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err(ctx()))?;
        if scan.file_len != scan.good_len {
            tracing::warn!(
                segment = %path.display(),
                dropped_bytes = scan.file_len - scan.good_len,
                "dropping a torn write-ahead log tail (never acknowledged)"
            );
            file.set_len(scan.good_len)
                .and_then(|()| file.sync_all())
                .map_err(io_err(ctx()))?;
        }
        file.seek(SeekFrom::Start(scan.good_len))
            .map_err(io_err(ctx()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            seq,
            file,
            len: scan.good_len,
            since_rotate: scan.good_len,
        })
    }

    /// Bytes written since the last rotation (or open).
    pub(crate) fn since_rotate(&self) -> u64 {
        self.since_rotate
    }

    /// Appends one encoded record, then fdatasyncs when `sync`.
    pub(crate) fn append(&mut self, record: &[u8], sync: bool) -> Result<(), AppendError> {
        let ctx = || {
            format!(
                "appending to {}",
                segment_path(&self.dir, self.seq).display()
            )
        };
        if let Err(e) = self.file.write_all(record) {
            // Cut the partial record off so later records are not hidden behind it.
            let cut = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.seek(SeekFrom::Start(self.len)));
            return Err(AppendError {
                error: io_err(ctx())(e),
                poisoned: cut.is_err(),
            });
        }
        self.len += record.len() as u64;
        self.since_rotate += record.len() as u64;
        if sync && let Err(e) = self.file.sync_data() {
            return Err(AppendError {
                error: io_err(ctx())(e),
                poisoned: true,
            });
        }
        Ok(())
    }

    /// Closes this segment (durably) and starts the next one; returns the closed segment's number.
    pub(crate) fn rotate(&mut self) -> Result<u64, TsdbError> {
        self.file.sync_data().map_err(io_err(format!(
            "syncing {}",
            segment_path(&self.dir, self.seq).display()
        )))?;
        let next = Self::create(&self.dir, self.seq + 1)?;
        let old = self.seq;
        *self = next;
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TsValue;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 7).unwrap();
        let batch = |s: u32| {
            vec![
                Point {
                    series: s,
                    ts: -5,
                    value: TsValue::Number(1.5),
                },
                Point {
                    series: s + 1,
                    ts: i64::MAX,
                    value: TsValue::Text("é".into()),
                },
                Point {
                    series: s,
                    ts: i64::MIN,
                    value: TsValue::Json("{}".into()),
                },
            ]
        };
        let mut buf = Vec::new();
        for s in [1, 2] {
            encode_record(batch(s).iter(), 3, &mut buf).unwrap();
            w.append(&buf, true).unwrap();
        }
        let path = segment_path(dir.path(), 7);
        let full = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 3).unwrap();
        let mut got = Vec::new();
        let scan = replay(&path, |p| got.push(p)).unwrap();
        assert_eq!(got, vec![batch(1)]);
        assert_eq!(scan.file_len, full - 3);
        assert!(scan.good_len < scan.file_len);
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    }
}
