//! Byte encodings shared by the WAL and the parts: varints, zigzag, a bit
//! stream, single values, and the compressed block of one series.
//!
//! A block holds up to [`MAX_BLOCK_POINTS`] points of one series, sorted by
//! time, and ends with a CRC-32 of everything before it:
//!
//! ```text
//! block   := count:uvarint  timestamps  values  crc32:u32le
//! timestamps (count >= 1) :=
//!           t0:ivarint  [d1:ivarint  then for each later point dod:ivarint
//!                        (after a dod of 0: run:uvarint more zero dods)]
//! values  := 0 e:u8 first:ivarint bits   -- decimal: every value is int / 10^e;
//!                                           deltas of the ints, zigzag, bit-packed
//!                                           in chunks of 128 with a 7-bit width each
//!          | 1 bits                      -- Gorilla XOR of the f64 bit patterns
//!          | 2 value*                    -- anything else, one tagged value each
//! value   := 0 f64le | 1 (false) | 2 (true) | 3 len:uvarint utf8 (text)
//!          | 4 len:uvarint utf8 (JSON)
//! ```
//!
//! Regular sensor data (a reading a minute with one or two decimals) costs
//! almost nothing for its timestamps (one zero run) and a few bits per value.

use crate::{TsValue, TsdbError};

/// The most points one block may hold (a decoder refuses more).
pub(crate) const MAX_BLOCK_POINTS: usize = 8192;
/// How many points the part writer puts in one block.
pub(crate) const BLOCK_POINTS: usize = 4096;

const TAG_NUMBER: u8 = 0;
const TAG_FALSE: u8 = 1;
const TAG_TRUE: u8 = 2;
const TAG_TEXT: u8 = 3;
const TAG_JSON: u8 = 4;

const KIND_DECIMAL: u8 = 0;
const KIND_GORILLA: u8 = 1;
const KIND_TAGGED: u8 = 2;

/// The most decimals the decimal encoding tries.
const MAX_DECIMALS: usize = 12;
const POW10: [f64; MAX_DECIMALS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
];
/// Integers up to this size are exact in an f64.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;
const CHUNK: usize = 128;

pub(crate) fn corrupt(what: impl Into<String>) -> TsdbError {
    TsdbError::Corrupt(what.into())
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

pub(crate) fn put_value(out: &mut Vec<u8>, v: &TsValue) {
    match v {
        TsValue::Number(x) => {
            out.push(TAG_NUMBER);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        TsValue::Bool(false) => out.push(TAG_FALSE),
        TsValue::Bool(true) => out.push(TAG_TRUE),
        TsValue::Text(s) => {
            out.push(TAG_TEXT);
            put_uvarint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        TsValue::Json(s) => {
            out.push(TAG_JSON);
            put_uvarint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// A cursor over bytes whose every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, TsdbError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| corrupt("unexpected end of data"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], TsdbError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| corrupt("length overflow"))?;
        let b = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| corrupt("unexpected end of data"))?;
        self.pos = end;
        Ok(b)
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, TsdbError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, TsdbError> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(corrupt("varint too long"));
            }
        }
    }

    pub(crate) fn ivarint(&mut self) -> Result<i64, TsdbError> {
        Ok(unzigzag(self.uvarint()?))
    }

    pub(crate) fn len(&mut self) -> Result<usize, TsdbError> {
        usize::try_from(self.uvarint()?).map_err(|_| corrupt("length too large"))
    }

    fn string(&mut self) -> Result<String, TsdbError> {
        let n = self.len()?;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| corrupt("text is not UTF-8"))
    }

    pub(crate) fn value(&mut self) -> Result<TsValue, TsdbError> {
        Ok(match self.u8()? {
            TAG_NUMBER => TsValue::Number(f64::from_bits(self.u64_le()?)),
            TAG_FALSE => TsValue::Bool(false),
            TAG_TRUE => TsValue::Bool(true),
            TAG_TEXT => TsValue::Text(self.string()?),
            TAG_JSON => TsValue::Json(self.string()?),
            t => return Err(corrupt(format!("unknown value tag {t}"))),
        })
    }
}

/// Writes bits least-significant first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u128,
    n: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, acc: 0, n: 0 }
    }

    fn write(&mut self, v: u64, bits: u32) {
        if bits == 0 {
            return;
        }
        let v = if bits >= 64 {
            v
        } else {
            v & ((1u64 << bits) - 1)
        };
        self.acc |= u128::from(v) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn finish(self) {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
    acc: u128,
    n: u32,
}

impl<'a> BitReader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            acc: 0,
            n: 0,
        }
    }

    fn refill(&mut self) {
        if self.n <= 64
            && let Some(chunk) = self.buf.get(self.pos..self.pos + 8)
        {
            let mut a = [0u8; 8];
            a.copy_from_slice(chunk);
            self.acc |= u128::from(u64::from_le_bytes(a)) << self.n;
            self.n += 64;
            self.pos += 8;
            return;
        }
        while self.n <= 120 {
            let Some(&b) = self.buf.get(self.pos) else {
                break;
            };
            self.acc |= u128::from(b) << self.n;
            self.n += 8;
            self.pos += 1;
        }
    }

    #[inline]
    fn read(&mut self, bits: u32) -> Result<u64, TsdbError> {
        if bits == 0 {
            return Ok(0);
        }
        if self.n < bits {
            self.refill();
            if self.n < bits {
                return Err(corrupt("bit stream ends early"));
            }
        }
        let v = if bits >= 64 {
            self.acc as u64
        } else {
            (self.acc as u64) & ((1u64 << bits) - 1)
        };
        self.acc >>= bits;
        self.n -= bits;
        Ok(v)
    }
}

/// The values of one block, as handed to [`encode_block`].
#[derive(Clone, Copy)]
pub(crate) enum ValsRef<'a> {
    /// Only numbers.
    Num(&'a [f64]),
    /// Any values.
    Any(&'a [TsValue]),
}

/// A decoded block; its vectors are reused from one block to the next.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub ts: Vec<i64>,
    /// The values when every one is a number (`any` is then empty).
    pub nums: Vec<f64>,
    /// The values otherwise (`nums` is then empty).
    pub any: Vec<TsValue>,
}

impl Decoded {
    pub(crate) fn is_numeric(&self) -> bool {
        self.any.is_empty()
    }

    /// The value at `i` as a number, or None for a non-numeric value.
    pub(crate) fn number(&self, i: usize) -> Option<f64> {
        if self.any.is_empty() {
            self.nums.get(i).copied()
        } else {
            match self.any.get(i) {
                Some(TsValue::Number(x)) => Some(*x),
                _ => None,
            }
        }
    }

    pub(crate) fn value(&self, i: usize) -> Option<TsValue> {
        if self.any.is_empty() {
            self.nums.get(i).map(|x| TsValue::Number(*x))
        } else {
            self.any.get(i).cloned()
        }
    }
}

/// Appends one block (`ts` sorted, same length as the values) to `out`.
pub(crate) fn encode_block(ts: &[i64], vals: ValsRef<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    put_uvarint(out, ts.len() as u64);
    encode_ts(ts, out);
    match vals {
        ValsRef::Num(v) => match decimal_scale(v) {
            Some(e) => encode_decimal(v, e, out),
            None => encode_gorilla(v, out),
        },
        ValsRef::Any(v) => {
            out.push(KIND_TAGGED);
            for x in v {
                put_value(out, x);
            }
        }
    }
    let crc = crc32fast::hash(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Decodes one block (checking its CRC) into `d`.
pub(crate) fn decode_block(block: &[u8], d: &mut Decoded) -> Result<(), TsdbError> {
    d.ts.clear();
    d.nums.clear();
    d.any.clear();
    let body_len = block
        .len()
        .checked_sub(4)
        .ok_or_else(|| corrupt("block too short"))?;
    let (body, crc) = block.split_at(body_len);
    let mut c = [0u8; 4];
    c.copy_from_slice(crc);
    if crc32fast::hash(body) != u32::from_le_bytes(c) {
        return Err(corrupt("block checksum mismatch"));
    }
    let mut r = Reader::new(body);
    let n = r.len()?;
    if n > MAX_BLOCK_POINTS {
        return Err(corrupt(format!("block claims {n} points")));
    }
    decode_ts(&mut r, n, &mut d.ts)?;
    if n == 0 {
        return Ok(());
    }
    match r.u8()? {
        KIND_DECIMAL => decode_decimal(&mut r, n, &mut d.nums),
        KIND_GORILLA => decode_gorilla(r.rest(), n, &mut d.nums),
        KIND_TAGGED => {
            d.any.reserve(n);
            for _ in 0..n {
                d.any.push(r.value()?);
            }
            Ok(())
        }
        k => Err(corrupt(format!("unknown value encoding {k}"))),
    }
}

fn encode_ts(ts: &[i64], out: &mut Vec<u8>) {
    let Some((&t0, _)) = ts.split_first() else {
        return;
    };
    put_ivarint(out, t0);
    let Some(&t1) = ts.get(1) else { return };
    let mut prev_delta = t1.wrapping_sub(t0);
    put_ivarint(out, prev_delta);
    let mut i = 2;
    while let (Some(&t), Some(&p)) = (ts.get(i), ts.get(i - 1)) {
        let d = t.wrapping_sub(p);
        let dod = d.wrapping_sub(prev_delta);
        prev_delta = d;
        put_ivarint(out, dod);
        i += 1;
        if dod == 0 {
            let mut run = 0u64;
            while let (Some(&t), Some(&p)) = (ts.get(i), ts.get(i - 1)) {
                if t.wrapping_sub(p) != prev_delta {
                    break;
                }
                run += 1;
                i += 1;
            }
            put_uvarint(out, run);
        }
    }
}

fn decode_ts(r: &mut Reader<'_>, n: usize, ts: &mut Vec<i64>) -> Result<(), TsdbError> {
    if n == 0 {
        return Ok(());
    }
    ts.reserve(n);
    let mut t = r.ivarint()?;
    ts.push(t);
    if n == 1 {
        return Ok(());
    }
    let mut delta = r.ivarint()?;
    t = t.wrapping_add(delta);
    ts.push(t);
    while ts.len() < n {
        let dod = r.ivarint()?;
        delta = delta.wrapping_add(dod);
        t = t.wrapping_add(delta);
        ts.push(t);
        if dod == 0 {
            let run = r.len()?;
            if run > n - ts.len() {
                return Err(corrupt("timestamp run past the end of the block"));
            }
            for _ in 0..run {
                t = t.wrapping_add(delta);
                ts.push(t);
            }
        }
    }
    Ok(())
}

#[inline]
fn fits_decimal(v: f64, e: usize) -> bool {
    let p = POW10[e];
    let x = (v * p).round();
    // Check through the integer the encoder stores (this also turns -0.0 into 0).
    x.abs() <= EXACT_INT && ((x as i64) as f64 / p).to_bits() == v.to_bits()
}

/// The fewest decimals with which every value survives `int / 10^e`
/// exactly, if there is such a number up to [`MAX_DECIMALS`].
fn decimal_scale(vals: &[f64]) -> Option<usize> {
    let mut e = 0;
    for &v in vals {
        while !fits_decimal(v, e) {
            e += 1;
            if e > MAX_DECIMALS {
                return None;
            }
        }
    }
    // Raising e keeps earlier values exact in theory; check rather than trust.
    vals.iter().all(|&v| fits_decimal(v, e)).then_some(e)
}

fn encode_decimal(vals: &[f64], e: usize, out: &mut Vec<u8>) {
    out.push(KIND_DECIMAL);
    out.push(e as u8);
    let p = POW10[e];
    let mut prev = vals.first().map_or(0, |v| (v * p).round() as i64);
    put_ivarint(out, prev);
    let deltas: Vec<u64> = vals
        .iter()
        .skip(1)
        .map(|v| {
            let i = (v * p).round() as i64;
            let d = zigzag(i.wrapping_sub(prev));
            prev = i;
            d
        })
        .collect();
    let mut w = BitWriter::new(out);
    for chunk in deltas.chunks(CHUNK) {
        let max = chunk.iter().fold(0u64, |a, &b| a | b);
        let width = 64 - max.leading_zeros();
        w.write(u64::from(width), 7);
        for &d in chunk {
            w.write(d, width);
        }
    }
    w.finish();
}

fn decode_decimal(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<(), TsdbError> {
    let e = usize::from(r.u8()?);
    let p = *POW10.get(e).ok_or_else(|| corrupt("too many decimals"))?;
    let mut cur = r.ivarint()?;
    out.reserve(n);
    out.push(cur as f64 / p);
    let mut bits = BitReader::new(r.rest());
    let mut left = n - 1;
    let mut ints = [0i64; CHUNK];
    while left > 0 {
        let width = bits.read(7)? as u32;
        if width > 64 {
            return Err(corrupt("bit width over 64"));
        }
        let m = left.min(CHUNK);
        let chunk = ints.get_mut(..m).unwrap_or_default();
        for i in chunk.iter_mut() {
            cur = cur.wrapping_add(unzigzag(bits.read(width)?));
            *i = cur;
        }
        // A separate loop without bit reading lets the divisions overlap.
        out.extend(chunk.iter().map(|&i| i as f64 / p));
        left -= m;
    }
    Ok(())
}

fn encode_gorilla(vals: &[f64], out: &mut Vec<u8>) {
    out.push(KIND_GORILLA);
    let mut w = BitWriter::new(out);
    let Some((first, rest)) = vals.split_first() else {
        w.finish();
        return;
    };
    let mut prev = first.to_bits();
    w.write(prev, 64);
    let mut window: Option<(u32, u32)> = None;
    for v in rest {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.write(0, 1);
            continue;
        }
        w.write(1, 1);
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        match window {
            Some((pl, pt)) if lead >= pl && trail >= pt => {
                w.write(0, 1);
                w.write(x >> pt, 64 - pl - pt);
            }
            _ => {
                let sig = 64 - lead - trail;
                w.write(1, 1);
                w.write(u64::from(lead), 5);
                w.write(u64::from(sig - 1), 6);
                w.write(x >> trail, sig);
                window = Some((lead, trail));
            }
        }
    }
    w.finish();
}

fn decode_gorilla(bytes: &[u8], n: usize, out: &mut Vec<f64>) -> Result<(), TsdbError> {
    let mut r = BitReader::new(bytes);
    out.reserve(n);
    let mut prev = r.read(64)?;
    out.push(f64::from_bits(prev));
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if r.read(1)? == 1 {
            let (lead, trail) = if r.read(1)? == 0 {
                window.ok_or_else(|| corrupt("Gorilla stream reuses a window it never set"))?
            } else {
                let lead = r.read(5)? as u32;
                let sig = r.read(6)? as u32 + 1;
                if lead + sig > 64 {
                    return Err(corrupt("Gorilla window wider than 64 bits"));
                }
                let w = (lead, 64 - lead - sig);
                window = Some(w);
                w
            };
            let sig = 64 - lead - trail;
            prev ^= r.read(sig)? << trail;
        }
        out.push(f64::from_bits(prev));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(ts: &[i64], vals: ValsRef<'_>) -> Decoded {
        let mut out = vec![0xAA]; // blocks need not start at offset 0
        encode_block(ts, vals, &mut out);
        let mut d = Decoded::default();
        decode_block(&out[1..], &mut d).unwrap();
        d
    }

    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("no NaN", |x| !x.is_nan()),
            (-100_000i64..100_000, 0u32..4).prop_map(|(i, e)| i as f64 / 10f64.powi(e as i32)),
            Just(0.0),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(-1e300),
        ]
    }

    fn value() -> impl Strategy<Value = TsValue> {
        prop_oneof![
            finite().prop_map(TsValue::Number),
            any::<bool>().prop_map(TsValue::Bool),
            ".{0,12}".prop_map(TsValue::Text),
            "[{}\\[\\]\",:a-z0-9]{0,12}".prop_map(TsValue::Json),
        ]
    }

    fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        prop_oneof![
            // Regular with jitter and gaps.
            (
                any::<i32>(),
                prop::collection::vec(
                    prop_oneof![Just(60_000i64), 59_990i64..60_010, 1i64..10_000_000],
                    0..300
                )
            )
                .prop_map(|(t0, ds)| {
                    let mut t = i64::from(t0) * 1000;
                    let mut v = vec![t];
                    for d in ds {
                        t += d;
                        v.push(t);
                    }
                    v
                }),
            // Anything sorted, extremes included.
            prop::collection::vec(any::<i64>(), 0..50).prop_map(|mut v| {
                v.sort_unstable();
                v
            }),
        ]
    }

    proptest! {
        #[test]
        fn numeric_blocks_round_trip_bit_for_bit((ts, vals) in timestamps().prop_flat_map(|ts| {
            let n = ts.len();
            (Just(ts), prop::collection::vec(finite(), n))
        })) {
            let d = round_trip(&ts, ValsRef::Num(&vals));
            prop_assert_eq!(&d.ts, &ts);
            prop_assert!(d.is_numeric());
            let got: Vec<u64> = d.nums.iter().map(|x| x.to_bits()).collect();
            let want: Vec<u64> = vals.iter().map(|x| x.to_bits()).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn mixed_blocks_round_trip((ts, vals) in timestamps().prop_flat_map(|ts| {
            let n = ts.len();
            (Just(ts), prop::collection::vec(value(), n))
        })) {
            let d = round_trip(&ts, ValsRef::Any(&vals));
            prop_assert_eq!(&d.ts, &ts);
            let got: Vec<TsValue> = (0..ts.len()).filter_map(|i| d.value(i)).collect();
            prop_assert_eq!(got, vals);
        }

        #[test]
        fn varints_round_trip(v in any::<i64>(), u in any::<u64>()) {
            let mut out = Vec::new();
            put_ivarint(&mut out, v);
            put_uvarint(&mut out, u);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.ivarint().unwrap(), v);
            prop_assert_eq!(r.uvarint().unwrap(), u);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn damaged_blocks_are_refused_not_panicked_on(ts in timestamps(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
            let vals: Vec<f64> = ts.iter().map(|t| (*t % 1000) as f64 / 10.0).collect();
            let mut out = Vec::new();
            encode_block(&ts, ValsRef::Num(&vals), &mut out);
            let i = flip.index(out.len());
            out[i] ^= 1 << bit;
            let mut d = Decoded::default();
            prop_assert!(decode_block(&out, &mut d).is_err());
        }
    }

    #[test]
    fn regular_sensor_data_costs_under_a_byte_a_point() {
        let ts: Vec<i64> = (0..1440).map(|i| 1_700_000_000_000 + i * 60_000).collect();
        let vals: Vec<f64> = (0..1440)
            .map(|i| ((250.0 + 30.0 * (i as f64 / 229.0).sin()).round()) / 10.0)
            .collect();
        let mut out = Vec::new();
        encode_block(&ts, ValsRef::Num(&vals), &mut out);
        assert!(out.len() < 1440, "{} bytes for 1440 points", out.len());
        let mut d = Decoded::default();
        decode_block(&out, &mut d).unwrap();
        assert_eq!(d.nums, vals);
    }

    #[test]
    fn values_that_need_many_decimals_use_gorilla() {
        assert_eq!(decimal_scale(&[0.1, 0.25, 3.0]), Some(2));
        assert_eq!(decimal_scale(&[std::f64::consts::PI]), None);
        assert_eq!(decimal_scale(&[-0.0]), None);
        assert_eq!(decimal_scale(&[1e300]), None);
    }
}
