//! casync's content-defined chunker: a buzhash over a 48-byte window; a chunk ends where the
//! hash h satisfies `h % d == d - 1` (d: the discriminator derived from the average size), but
//! never before `min` bytes and always at `max` bytes. The same input and parameters give the
//! same boundaries as `casync make` (tested against the real casync).

use crate::CasyncError;

/// The rolling hash window.
pub const WINDOW: usize = 48;
/// casync's limits for any chunk size parameter.
pub const LIMIT_MIN: u64 = 1;
pub const LIMIT_MAX: u64 = 128 * 1024 * 1024;

/// Chunk size parameters (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSizes {
    pub min: u64,
    pub avg: u64,
    pub max: u64,
}

impl Default for ChunkSizes {
    /// casync's defaults: 16 / 64 / 256 KiB.
    fn default() -> Self {
        ChunkSizes {
            min: 16 * 1024,
            avg: 64 * 1024,
            max: 256 * 1024,
        }
    }
}

impl ChunkSizes {
    pub fn new(min: u64, avg: u64, max: u64) -> Result<Self, CasyncError> {
        let bad = |reason| CasyncError::BadParams {
            min,
            avg,
            max,
            reason,
        };
        if min < LIMIT_MIN || max > LIMIT_MAX {
            return Err(bad("outside 1 B .. 128 MiB"));
        }
        if !(min <= avg && avg <= max) {
            return Err(bad("needs min <= avg <= max"));
        }
        Ok(ChunkSizes { min, avg, max })
    }

    /// casync's cut discriminator for `avg` (chunks come out ~1.32× larger than a plain
    /// `h % avg` test would give), clamped to [min, max]. Computed in f64 and truncated, as
    /// casync does in C.
    pub fn discriminator(&self) -> u32 {
        let avg = self.avg as f64;
        let d = (avg / (-1.428_888_52e-7 * avg + 1.332_375_15)) as u64;
        d.clamp(self.min, self.max).min(u64::from(u32::MAX)) as u32
    }

    fn fixed(&self) -> bool {
        self.min == self.avg && self.avg == self.max
    }
}

/// Streaming chunker: feed bytes with [`Chunker::scan`] until it reports a boundary.
#[derive(Debug, Clone)]
pub struct Chunker {
    sizes: ChunkSizes,
    discriminator: u32,
    /// Lemire's fastmod multiplier for `discriminator`: the cut test runs for every byte, and
    /// a hardware division there costs more than the rest of the loop.
    fastmod: u64,
    h: u32,
    window: [u8; WINDOW],
    window_len: usize,
    chunk_len: u64,
}

impl Chunker {
    pub fn new(sizes: ChunkSizes) -> Self {
        let discriminator = sizes.discriminator();
        Chunker {
            discriminator,
            fastmod: (u64::MAX / u64::from(discriminator)).wrapping_add(1),
            sizes,
            h: 0,
            window: [0; WINDOW],
            window_len: 0,
            chunk_len: 0,
        }
    }

    pub fn sizes(&self) -> ChunkSizes {
        self.sizes
    }

    /// Scans `data` (the bytes after everything scanned so far). Returns `Some(k)` if the
    /// current chunk ends after `data[..k]` (the chunker is then reset for the next chunk, and
    /// the caller scans `data[k..]` next), or `None` if all of `data` belongs to it.
    pub fn scan(&mut self, data: &[u8]) -> Option<usize> {
        if self.sizes.fixed() {
            let want = (self.sizes.avg - self.chunk_len).min(data.len() as u64) as usize;
            self.chunk_len += want as u64;
            if self.chunk_len < self.sizes.avg {
                return None;
            }
            self.reset();
            return Some(want);
        }
        let mut consumed = 0;
        if self.window_len < WINDOW {
            let take = (WINDOW - self.window_len).min(data.len());
            self.window[self.window_len..self.window_len + take].copy_from_slice(&data[..take]);
            self.window_len += take;
            self.chunk_len += take as u64;
            consumed = take;
            if self.window_len < WINDOW {
                return None;
            }
            self.h = start(&self.window);
            if self.shall_break() {
                self.reset();
                return Some(consumed);
            }
        }
        // The oldest byte of the window sits where the next byte goes (a ring).
        let mut idx = (self.chunk_len % WINDOW as u64) as usize;
        // Below min - WINDOW nothing can cut and the hash only depends on the last WINDOW
        // bytes: skip ahead and only keep the ring current.
        let skippable = self
            .sizes
            .min
            .saturating_sub(WINDOW as u64)
            .saturating_sub(self.chunk_len)
            .min((data.len() - consumed) as u64) as usize;
        if skippable > WINDOW {
            // The ring and the hash from the last WINDOW bytes before the skip target.
            let skip_to = consumed + skippable;
            self.chunk_len += skippable as u64;
            idx = (self.chunk_len % WINDOW as u64) as usize;
            for (i, &b) in data[skip_to - WINDOW..skip_to].iter().enumerate() {
                self.window[(idx + i) % WINDOW] = b;
            }
            self.h = start_ring(&self.window, idx);
            consumed = skip_to;
        }
        let rest = &data[consumed..];
        let n = rest.len();
        let (mut h, len0) = (self.h, self.chunk_len);
        let (min, max) = (self.sizes.min, self.sizes.max);
        let (d, m) = (self.discriminator, self.fastmod);
        // At most this many bytes before the chunk reaches max (len0 < max here).
        let stop = usize::try_from(max - len0).map_or(n, |room| room.min(n));
        // The first WINDOW bytes push out bytes from the ring (oldest at idx); after that the
        // byte leaving the window is in `rest` itself.
        let head = stop.min(WINDOW);
        for (i, &enter) in rest[..head].iter().enumerate() {
            h = roll(h, self.window[(idx + i) % WINDOW], enter);
            if len0 + i as u64 + 1 >= min && fastmod(h, m, d) == d - 1 {
                self.reset();
                return Some(consumed + i + 1);
            }
        }
        // Bytes at indexes below `tested` end the chunk before min: no cut test for them.
        let tested =
            usize::try_from(min.saturating_sub(len0 + 1)).map_or(stop, |t| t.clamp(head, stop));
        for i in head..tested {
            h = roll(h, rest[i - WINDOW], rest[i]);
        }
        let cut = if d <= 1 << 31 {
            roll_to_cut(rest, tested, stop, &mut h, |h| divides(h, m))
        } else {
            roll_to_cut(rest, tested, stop, &mut h, |h| fastmod(h, m, d) == d - 1)
        };
        if let Some(i) = cut {
            self.reset();
            return Some(consumed + i + 1);
        }
        if len0 + stop as u64 >= max {
            self.reset();
            return Some(consumed + stop);
        }
        // All of `rest` belongs to the chunk: keep the ring current (byte at chunk position p
        // in slot p % WINDOW) and the state for the next call.
        for (j, &b) in rest.iter().enumerate().skip(n.saturating_sub(WINDOW)) {
            self.window[((len0 + j as u64) % WINDOW as u64) as usize] = b;
        }
        self.h = h;
        self.chunk_len = len0 + n as u64;
        None
    }

    /// Length of the chunk in progress.
    pub fn pending(&self) -> u64 {
        self.chunk_len
    }

    fn shall_break(&self) -> bool {
        if self.chunk_len >= self.sizes.max {
            return true;
        }
        if self.chunk_len < self.sizes.min {
            return false;
        }
        fastmod(self.h, self.fastmod, self.discriminator) == self.discriminator - 1
    }

    fn reset(&mut self) {
        self.h = 0;
        self.window_len = 0;
        self.chunk_len = 0;
    }
}

/// One step of the rolling hash: `enter` comes into the window, `leave` goes out.
#[inline(always)]
fn roll(h: u32, leave: u8, enter: u8) -> u32 {
    h.rotate_left(1) ^ TABLE[leave as usize].rotate_left(WINDOW as u32) ^ TABLE[enter as usize]
}

/// Rolls over `rest[from..to]` (from >= WINDOW: the leaving byte is in `rest`) and returns
/// the index of the first byte after which `cut(h)` holds.
#[inline(always)]
fn roll_to_cut(
    rest: &[u8],
    from: usize,
    to: usize,
    h: &mut u32,
    cut: impl Fn(u32) -> bool,
) -> Option<usize> {
    let mut x = *h;
    for i in from..to {
        x = roll(x, rest[i - WINDOW], rest[i]);
        if cut(x) {
            *h = x;
            return Some(i);
        }
    }
    *h = x;
    None
}

/// casync's cut test `h % d == d - 1` as one multiplication: `h + 1` (at most 2^32) is a
/// multiple of `d` iff `(h + 1) * m mod 2^64 < m`, with `m = u64::MAX / d + 1` (wrapping: 0
/// for d = 1, and then every value passes). Exact for d <= 2^31 (Lemire, Kaser, Kurz 2019;
/// with m = (2^64 + e) / d, e < d, the product is q·e < m for multiples, and lies in
/// [m, 2^64) otherwise).
#[inline(always)]
fn divides(h: u32, m: u64) -> bool {
    (u64::from(h) + 1).wrapping_mul(m) <= m.wrapping_sub(1)
}

/// `a % d` with `m = u64::MAX / d + 1` (wrapping: 0 for d = 1) (Lemire, Kaser, Kurz 2019: exact for all u32 `a`, `d`).
#[inline(always)]
fn fastmod(a: u32, m: u64, d: u32) -> u32 {
    let low = m.wrapping_mul(u64::from(a));
    ((u128::from(low) * u128::from(d)) >> 64) as u32
}

/// The buzhash of a full window, oldest byte first.
fn start(window: &[u8; WINDOW]) -> u32 {
    start_ring(window, 0)
}

/// The buzhash of a ring whose oldest byte is at `oldest`.
fn start_ring(ring: &[u8; WINDOW], oldest: usize) -> u32 {
    let mut h = 0u32;
    for i in 0..WINDOW {
        let b = ring[(oldest + i) % WINDOW];
        h ^= TABLE[b as usize].rotate_left((WINDOW - 1 - i) as u32);
    }
    h
}

/// casync's buzhash table (src/cachunker.c): part of the format, since it decides where
/// chunks end.
static TABLE: [u32; 256] = [
    0x458be752, 0xc10748cc, 0xfbbcdbb8, 0x6ded5b68, 0xb10a82b5, 0x20d75648, 0xdfc5665f, 0xa8428801,
    0x7ebf5191, 0x841135c7, 0x65cc53b3, 0x280a597c, 0x16f60255, 0xc78cbc3e, 0x294415f5, 0xb938d494,
    0xec85c4e6, 0xb7d33edc, 0xe549b544, 0xfdeda5aa, 0x882bf287, 0x3116737c, 0x05569956, 0xe8cc1f68,
    0x0806ac5e, 0x22a14443, 0x15297e10, 0x50d090e7, 0x4ba60f6f, 0xefd9f1a7, 0x5c5c885c, 0x82482f93,
    0x9bfd7c64, 0x0b3e7276, 0xf2688e77, 0x8fad8abc, 0xb0509568, 0xf1ada29f, 0xa53efdfe, 0xcb2b1d00,
    0xf2a9e986, 0x6463432b, 0x95094051, 0x5a223ad2, 0x9be8401b, 0x61e579cb, 0x1a556a14, 0x5840fdc2,
    0x9261ddf6, 0xcde002bb, 0x52432bb0, 0xbf17373e, 0x7b7c222f, 0x2955ed16, 0x9f10ca59, 0xe840c4c9,
    0xccabd806, 0x14543f34, 0x1462417a, 0x0d4a1f9c, 0x087ed925, 0xd7f8f24c, 0x7338c425, 0xcf86c8f5,
    0xb19165cd, 0x9891c393, 0x325384ac, 0x0308459d, 0x86141d7e, 0xc922116a, 0xe2ffa6b6, 0x53f52aed,
    0x2cd86197, 0xf5b9f498, 0xbf319c8f, 0xe0411fae, 0x977eb18c, 0xd8770976, 0x9833466a, 0xc674df7f,
    0x8c297d45, 0x8ca48d26, 0xc49ed8e2, 0x7344f874, 0x556f79c7, 0x6b25eaed, 0xa03e2b42, 0xf68f66a4,
    0x8e8b09a2, 0xf2e0e62a, 0x0d3a9806, 0x9729e493, 0x8c72b0fc, 0x160b94f6, 0x450e4d3d, 0x7a320e85,
    0xbef8f0e1, 0x21d73653, 0x4e3d977a, 0x1e7b3929, 0x1cc6c719, 0xbe478d53, 0x8d752809, 0xe6d8c2c6,
    0x275f0892, 0xc8acc273, 0x4cc21580, 0xecc4a617, 0xf5f7be70, 0xe795248a, 0x375a2fe9, 0x425570b6,
    0x8898dcf8, 0xdc2d97c4, 0x0106114b, 0x364dc22f, 0x1e0cad1f, 0xbe63803c, 0x5f69fac2, 0x4d5afa6f,
    0x1bc0dfb5, 0xfb273589, 0x0ea47f7b, 0x3c1c2b50, 0x21b2a932, 0x6b1223fd, 0x2fe706a8, 0xf9bd6ce2,
    0xa268e64e, 0xe987f486, 0x3eacf563, 0x1ca2018c, 0x65e18228, 0x2207360a, 0x57cf1715, 0x34c37d2b,
    0x1f8f3cde, 0x93b657cf, 0x31a019fd, 0xe69eb729, 0x8bca7b9b, 0x4c9d5bed, 0x277ebeaf, 0xe0d8f8ae,
    0xd150821c, 0x31381871, 0xafc3f1b0, 0x927db328, 0xe95effac, 0x305a47bd, 0x426ba35b, 0x1233af3f,
    0x686a5b83, 0x50e072e5, 0xd9d3bb2a, 0x8befc475, 0x487f0de6, 0xc88dff89, 0xbd664d5e, 0x971b5d18,
    0x63b14847, 0xd7d3c1ce, 0x7f583cf3, 0x72cbcb09, 0xc0d0a81c, 0x7fa3429b, 0xe9158a1b, 0x225ea19a,
    0xd8ca9ea3, 0xc763b282, 0xbb0c6341, 0x020b8293, 0xd4cd299d, 0x58cfa7f8, 0x91b4ee53, 0x37e4d140,
    0x95ec764c, 0x30f76b06, 0x5ee68d24, 0x679c8661, 0xa41979c2, 0xf2b61284, 0x4fac1475, 0x0adb49f9,
    0x19727a23, 0x15a7e374, 0xc43a18d5, 0x3fb1aa73, 0x342fc615, 0x924c0793, 0xbee2d7f0, 0x8a279de9,
    0x4aa2d70c, 0xe24dd37f, 0xbe862c0b, 0x177c22c2, 0x5388e5ee, 0xcd8a7510, 0xf901b4fd, 0xdbc13dbc,
    0x6c0bae5b, 0x64efe8c7, 0x48b02079, 0x80331a49, 0xca3d8ae6, 0xf3546190, 0xfed7108b, 0xc49b941b,
    0x32baf4a9, 0xeb833a4a, 0x88a3f1a5, 0x3a91ce0a, 0x3cc27da1, 0x7112e684, 0x4a3096b1, 0x3794574c,
    0xa3c8b6f3, 0x1d213941, 0x6e0a2e00, 0x233479f1, 0x0f4cd82f, 0x6093edd2, 0x5d7d209e, 0x464fe319,
    0xd4dcac9e, 0x0db845cb, 0xfb5e4bc3, 0xe0256ce1, 0x09fb4ed1, 0x0914be1e, 0xa5bdb2c3, 0xc6eb57bb,
    0x30320350, 0x3f397e91, 0xa67791bc, 0x86bc0e2c, 0xefa0a7e2, 0xe9ff7543, 0xe733612c, 0xd185897b,
    0x329e5388, 0x91dd236b, 0x2ecb0d93, 0xf4d82a3d, 0x35b5c03f, 0xe4e606f0, 0x05b21843, 0x37b45964,
    0x5eff22f4, 0x6027f4cc, 0x77178b3c, 0xae507131, 0x7bf7cabc, 0xf9c18d66, 0x593ade65, 0xd95ddf11,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn cuts(input: &[u8], sizes: ChunkSizes, piece: impl Fn(usize) -> usize) -> Vec<u64> {
        let mut chunker = Chunker::new(sizes);
        let (mut out, mut pos, mut offset) = (Vec::new(), 0usize, 0u64);
        let mut i = 0;
        while pos < input.len() {
            let end = (pos + piece(i).max(1)).min(input.len());
            let mut part = &input[pos..end];
            while let Some(k) = chunker.scan(part) {
                offset += k as u64;
                out.push(offset);
                part = &part[k..];
            }
            offset += part.len() as u64;
            pos = end;
            i += 1;
        }
        out
    }

    #[test]
    fn boundaries_do_not_depend_on_how_the_input_is_split() {
        let input = data(2 << 20);
        for sizes in [
            ChunkSizes::default(),
            ChunkSizes::new(64, 256, 1024).unwrap(),
            ChunkSizes::new(4096, 4096, 4096).unwrap(),
        ] {
            let whole = cuts(&input, sizes, |_| usize::MAX / 2);
            assert!(whole.len() > 5, "{sizes:?}");
            for piece in [1usize, 47, 48, 49, 4095, 65536] {
                assert_eq!(
                    cuts(&input, sizes, |_| piece),
                    whole,
                    "{sizes:?} piece {piece}"
                );
            }
            let ragged = cuts(&input, sizes, |i| (i * 7919) % 70_001);
            assert_eq!(ragged, whole, "{sizes:?} ragged");
            let mut prev = 0;
            for &c in &whole {
                assert!(c - prev >= sizes.min && c - prev <= sizes.max);
                prev = c;
            }
        }
    }

    #[test]
    fn fastmod_is_exact() {
        let mut x = 1u32;
        for d in [1u32, 2, 3, 7, 49535, 65536, 1_000_003, u32::MAX] {
            let m = (u64::MAX / u64::from(d)).wrapping_add(1);
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                assert_eq!(fastmod(x, m, d), x % d, "{x} % {d}");
            }
            assert_eq!(fastmod(u32::MAX, m, d), u32::MAX % d);
            assert_eq!(fastmod(0, m, d), 0);
        }
    }

    #[test]
    fn one_multiplication_cut_test_is_exact() {
        let mut x = 7u32;
        for d in [
            1u32,
            2,
            3,
            7,
            4096,
            49535,
            65536,
            1_000_003,
            1 << 27,
            (1 << 31) - 1,
            1 << 31,
        ] {
            let m = (u64::MAX / u64::from(d)).wrapping_add(1);
            let check = |h: u32| assert_eq!(divides(h, m), h % d == d - 1, "{h} % {d}");
            for _ in 0..100_000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                check(x);
                check(x / d * d); // around the multiples
                check((x / d * d).wrapping_sub(1));
                check((x / d * d).wrapping_add(d - 1));
            }
            for h in [0, 1, d.wrapping_sub(2), d - 1, d, u32::MAX - 1, u32::MAX] {
                check(h);
            }
        }
    }

    #[test]
    fn discriminator_matches_casync_for_the_default_average() {
        assert_eq!(ChunkSizes::default().discriminator(), 49535);
        assert!(ChunkSizes::new(0, 1, 2).is_err());
        assert!(ChunkSizes::new(4, 2, 8).is_err());
    }
}
