//! Cheap deterministic randomness: hashes of (seed, what, when). Every
//! simulated value is a pure function of its inputs, so the history and the
//! live feed agree and any minute can be recomputed on its own.

/// SplitMix64's finaliser: a good 64-bit mixer.
#[inline]
pub(crate) fn mix(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of two words.
#[inline]
pub(crate) fn hash2(a: u64, b: u64) -> u64 {
    mix(a ^ mix(b))
}

/// Hash of three words.
#[inline]
pub(crate) fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix(hash2(a, b) ^ mix(c.wrapping_add(0x632B_E59B_D9B4_E019)))
}

/// FNV-1a hash of a string (stable across platforms and releases).
pub(crate) fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A hash as a number in [0, 1).
#[inline]
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A hash as a number in [-1, 1).
#[inline]
pub(crate) fn signed(h: u64) -> f64 {
    unit(h) * 2.0 - 1.0
}

/// Smooth noise in [-1, 1]: random knots every `period` minutes, joined by
/// a cosine-like curve, so consecutive minutes differ only a little.
#[inline]
pub(crate) fn smooth(seed: u64, minute: i64, period: i64) -> f64 {
    let k = minute.div_euclid(period);
    let f = minute.rem_euclid(period) as f64 / period as f64;
    let a = signed(hash2(seed, k as u64));
    let b = signed(hash2(seed, (k + 1) as u64));
    let t = f * f * (3.0 - 2.0 * f);
    a + (b - a) * t
}

/// A stream of random numbers from one hash, for generating events.
#[derive(Debug, Clone)]
pub(crate) struct Stream(u64);

impl Stream {
    /// A stream for `(seed, tag, key)`.
    pub fn new(seed: u64, tag: &str, key: i64) -> Self {
        Self(hash3(seed, str_hash(tag), key as u64))
    }

    /// Next number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        unit(mix(self.0))
    }

    /// Next number in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Next whole number in [lo, hi).
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as f64;
        lo + ((self.next_f64() * span) as i64).min(hi - lo - 1)
    }

    /// An index chosen with probability proportional to its weight.
    pub fn weighted(&mut self, weights: impl Iterator<Item = f64> + Clone) -> usize {
        let total: f64 = weights.clone().sum();
        let mut x = self.next_f64() * total;
        let mut last = 0;
        for (i, w) in weights.enumerate() {
            last = i;
            if x < w {
                return i;
            }
            x -= w;
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_noise_is_bounded_and_continuous() {
        let mut prev = smooth(7, 0, 15);
        for m in 1..10_000 {
            let v = smooth(7, m, 15);
            assert!((-1.0..=1.0).contains(&v));
            assert!((v - prev).abs() < 0.2, "jump at {m}");
            prev = v;
        }
    }

    #[test]
    fn streams_are_deterministic_and_in_range() {
        let mut a = Stream::new(1, "x", 5);
        let mut b = Stream::new(1, "x", 5);
        for _ in 0..1000 {
            let v = a.range(2.0, 3.0);
            assert_eq!(v, b.range(2.0, 3.0));
            assert!((2.0..3.0).contains(&v));
            let i = a.int(0, 3);
            b.int(0, 3);
            assert!((0..3).contains(&i));
        }
        let w = [0.0, 1.0, 0.0];
        assert_eq!(a.weighted(w.iter().copied()), 1);
    }
}
