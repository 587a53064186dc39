//! The first pass of the value scan: which bytes of a value may start a secret, 32 bytes at a
//! time.
//!
//! Every rule's match starts at one of three marks:
//!
//! - a *word start whose first two bytes may begin a literal prefix* (`gh` of `ghp_…`, `sk` of
//!   `sk_live_…`, `be` of `Bearer `, `BE` of `-----BEGIN `…). The pairs are tested as Teddy
//!   does: each pair of the rules is put in one of eight buckets, and four 16-entry tables, one
//!   per nibble of each of the two bytes, give the buckets a byte may be in; a position is kept
//!   when the AND of its four entries is not zero. Some pairs the rules do not have pass too
//!   (the nibbles of a bucket's pairs combine); the exact test comes after.
//! - a *trigger byte*: `=` or `:` (an assignment, a URL's credentials), `@` (an e-mail address,
//!   when that rule is on);
//! - an *aligned group of four digits*: every card number holds one, however it is grouped
//!   (4-4-4-4, 4-6-5, 4-6-4 or none), starting at most fifteen bytes after the card.
//!
//! A block with none of them is passed over. The byte classes come from two 16-entry tables
//! indexed by each byte's two nibbles, whose AND gives the byte's class bits ([`Filter::class`]),
//! so that one block costs about thirty vector instructions where AVX2 is available; the same
//! results are computed byte by byte elsewhere.

/// `:` and `=` (when assignments or URL passwords are looked for).
const ASSIGN: u8 = 0x01;
/// `@` (when e-mail addresses are looked for).
const AT: u8 = 0x02;
/// `A`–`O` and `a`–`o`.
const LETTERS_1: u8 = 0x04;
/// `P`–`Z` and `p`–`z`.
const LETTERS_2: u8 = 0x08;
/// Digits, always.
const DIGIT: u8 = 0x10;
/// Digits, when card numbers are looked for (the sign bit, for one vector compare).
const CARD: u8 = 0x80;
/// Letters and digits.
const ALNUM: u8 = LETTERS_1 | LETTERS_2 | DIGIT;
/// The trigger classes.
const TRIGGERS: u8 = ASSIGN | AT;

/// The tables of one set of rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Filter {
    /// Class bits by low and high nibble.
    lo: [u8; 16],
    hi: [u8; 16],
    /// Pair buckets: by the low and high nibble of the first byte, then of the second.
    lo0: [u8; 16],
    hi0: [u8; 16],
    lo1: [u8; 16],
    hi1: [u8; 16],
}

impl Filter {
    /// The tables for these first pairs of bytes and these triggers.
    pub(super) fn new(pairs: &[(u8, u8)], assign: bool, email: bool, card: bool) -> Filter {
        let mut lo = [0u8; 16];
        let mut hi = [0u8; 16];
        hi[4] |= LETTERS_1;
        hi[6] |= LETTERS_1;
        hi[5] |= LETTERS_2;
        hi[7] |= LETTERS_2;
        hi[3] |= DIGIT;
        for (i, l) in lo.iter_mut().enumerate() {
            if i >= 1 {
                *l |= LETTERS_1;
            }
            if i <= 0xA {
                *l |= LETTERS_2;
            }
            if i <= 9 {
                *l |= DIGIT;
            }
        }
        if card {
            hi[3] |= CARD;
            for l in &mut lo[..10] {
                *l |= CARD;
            }
        }
        if assign {
            hi[3] |= ASSIGN;
            lo[0xA] |= ASSIGN;
            lo[0xD] |= ASSIGN;
        }
        if email {
            hi[4] |= AT;
            lo[0] |= AT;
        }
        let mut f = Filter {
            lo,
            hi,
            lo0: [0; 16],
            hi0: [0; 16],
            lo1: [0; 16],
            hi1: [0; 16],
        };
        for (bucket, group) in buckets(pairs).iter().enumerate() {
            let bit = 1u8 << bucket;
            for &(a, b) in group {
                f.lo0[usize::from(a & 15)] |= bit;
                f.hi0[usize::from(a >> 4)] |= bit;
                f.lo1[usize::from(b & 15)] |= bit;
                f.hi1[usize::from(b >> 4)] |= bit;
            }
        }
        f
    }

    /// The class bits of `b`.
    #[inline]
    fn class(&self, b: u8) -> u8 {
        self.hi[usize::from(b >> 4)] & self.lo[usize::from(b & 15)]
    }

    /// Whether the pair `(a, b)` passes the bucket test.
    #[inline]
    fn pair(&self, a: u8, b: u8) -> bool {
        self.lo0[usize::from(a & 15)]
            & self.hi0[usize::from(a >> 4)]
            & self.lo1[usize::from(b & 15)]
            & self.hi1[usize::from(b >> 4)]
            != 0
    }
}

/// The pairs, grouped by first byte, spread over eight buckets so that the nibbles of a
/// bucket's pairs combine into as few other pairs as they can (greedily, largest groups first).
fn buckets(pairs: &[(u8, u8)]) -> Vec<Vec<(u8, u8)>> {
    let mut groups: Vec<Vec<(u8, u8)>> = Vec::new();
    for &(a, b) in pairs {
        match groups.iter_mut().find(|g| g[0].0 == a) {
            Some(g) if !g.contains(&(a, b)) => g.push((a, b)),
            Some(_) => {}
            None => groups.push(vec![(a, b)]),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    // How many pairs a bucket lets through: the products of its nibble sets.
    let passes = |g: &[(u8, u8)]| -> usize {
        let count = |f: &dyn Fn(&(u8, u8)) -> u8| {
            let mut m = 0u16;
            for p in g {
                m |= 1 << f(p);
            }
            m.count_ones() as usize
        };
        count(&|p| p.0 & 15) * count(&|p| p.0 >> 4) * count(&|p| p.1 & 15) * count(&|p| p.1 >> 4)
    };
    let mut out: Vec<Vec<(u8, u8)>> = vec![Vec::new(); 8];
    for g in groups {
        let best = (0..8)
            .min_by_key(|&k| {
                let mut with = out[k].clone();
                with.extend_from_slice(&g);
                passes(&with) - passes(&out[k])
            })
            .unwrap_or(0);
        out[best].extend_from_slice(&g);
    }
    out
}

/// What the exact search needs of a block that may hold a secret's start: bit `i` of each mask
/// is about `s[at + i]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Block {
    /// Where the block starts in the value.
    pub(super) at: usize,
    /// Starts of words (a letter or digit after none) whose first two bytes pass the pair test.
    pub(super) starts: u32,
    /// Trigger bytes.
    pub(super) triggers: u32,
    /// The bytes of the aligned groups of four digits (when card numbers are looked for).
    pub(super) quads: u32,
}

/// Whether this machine runs the vector version (decided once per [`Redactor`](super::Redactor)).
pub(super) fn vector() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Calls `f` with each block of `s` that may hold a secret's start, in order. Blocks start every
/// 32 bytes (so groups of four are aligned the same way everywhere); the last one is read as if
/// padded with zeros.
#[inline]
pub(super) fn blocks(s: &[u8], filter: &Filter, vector: bool, f: &mut impl FnMut(&Block)) {
    #[cfg(target_arch = "x86_64")]
    if vector {
        #[allow(unsafe_code)]
        // SAFETY: `vector` is true only when `vector()` found AVX2 on this machine.
        unsafe {
            avx2::blocks(s, filter, f)
        };
        return;
    }
    let _ = vector;
    blocks_scalar(s, filter, f);
}

/// Whether the byte before `at` is a letter or a digit.
#[inline]
fn alnum_before(s: &[u8], at: usize) -> bool {
    at > 0 && s[at - 1].is_ascii_alphanumeric()
}

/// The word starts among the pair candidates `pairs` of a block whose letters and digits are
/// `alnum`.
#[inline]
fn starts(s: &[u8], at: usize, pairs: u32, alnum: u32) -> u32 {
    pairs & alnum & !((alnum << 1) | u32::from(alnum_before(s, at)))
}

/// The aligned groups of four set bits of `digits`, as masks of their bytes.
#[inline]
fn quads(digits: u32) -> u32 {
    let mut q = 0;
    for g in 0..8 {
        if (digits >> (4 * g)) & 0xf == 0xf {
            q |= 0xf << (4 * g);
        }
    }
    q
}

/// Copies `src` (at most 32 bytes) to the start of `dst` in a few fixed-size moves, which a
/// call to `memcpy` would cost more than for the last bytes of a value.
#[inline(always)]
fn copy_short(dst: &mut [u8; 64], src: &[u8]) {
    let n = src.len().min(32);
    if n >= 16 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..n].copy_from_slice(&src[n - 16..n]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..n].copy_from_slice(&src[n - 8..n]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..n].copy_from_slice(&src[n - 4..n]);
    } else {
        dst[..n].copy_from_slice(&src[..n]);
    }
}

fn blocks_scalar(s: &[u8], filter: &Filter, f: &mut impl FnMut(&Block)) {
    let mut at = 0;
    while at < s.len() {
        let byte = |i: usize| s.get(at + i).copied().unwrap_or(0);
        let (mut pairs, mut alnum, mut triggers, mut digits) = (0u32, 0u32, 0u32, 0u32);
        for i in 0..32 {
            let c = filter.class(byte(i));
            pairs |= u32::from(filter.pair(byte(i), byte(i + 1))) << i;
            alnum |= u32::from(c & ALNUM != 0) << i;
            triggers |= u32::from(c & TRIGGERS != 0) << i;
            digits |= u32::from(c & CARD != 0) << i;
        }
        let block = Block {
            at,
            starts: starts(s, at, pairs, alnum),
            triggers,
            quads: quads(digits),
        };
        if block.starts | block.triggers | block.quads != 0 {
            f(&block);
        }
        at += 32;
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{Block, Filter, ALNUM, TRIGGERS};
    use std::arch::x86_64::*;

    /// The tables, each in both lanes of a vector.
    struct Tables {
        lo: __m256i,
        hi: __m256i,
        lo0: __m256i,
        hi0: __m256i,
        lo1: __m256i,
        hi1: __m256i,
        nib: __m256i,
        zero: __m256i,
        ones: __m256i,
        triggers: __m256i,
        alnum: __m256i,
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn table(t: &[u8; 16]) -> __m256i {
        // SAFETY: `t` is 16 bytes.
        _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(t.as_ptr().cast()) })
    }

    /// The masks of the block at `at`, from its bytes `x` and the bytes one further `y`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn block(s: &[u8], at: usize, x: __m256i, y: __m256i, t: &Tables) -> Option<Block> {
        let xl = _mm256_and_si256(x, t.nib);
        let xh = _mm256_and_si256(_mm256_srli_epi16(x, 4), t.nib);
        let yl = _mm256_and_si256(y, t.nib);
        let yh = _mm256_and_si256(_mm256_srli_epi16(y, 4), t.nib);
        let cls = _mm256_and_si256(_mm256_shuffle_epi8(t.lo, xl), _mm256_shuffle_epi8(t.hi, xh));
        let pairs = _mm256_and_si256(
            _mm256_and_si256(
                _mm256_shuffle_epi8(t.lo0, xl),
                _mm256_shuffle_epi8(t.hi0, xh),
            ),
            _mm256_and_si256(
                _mm256_shuffle_epi8(t.lo1, yl),
                _mm256_shuffle_epi8(t.hi1, yh),
            ),
        );
        let trig = _mm256_and_si256(cls, t.triggers);
        let quads = _mm256_cmpeq_epi32(_mm256_cmpgt_epi8(t.zero, cls), t.ones);
        let any = _mm256_or_si256(_mm256_or_si256(pairs, trig), quads);
        if _mm256_testz_si256(any, any) != 0 {
            return None;
        }
        let set = |v: __m256i| !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, t.zero)) as u32);
        let pairs = set(pairs);
        let starts = if pairs == 0 {
            0
        } else {
            super::starts(s, at, pairs, set(_mm256_and_si256(cls, t.alnum)))
        };
        let block = Block {
            at,
            starts,
            triggers: set(trig),
            quads: _mm256_movemask_epi8(quads) as u32,
        };
        (block.starts | block.triggers | block.quads != 0).then_some(block)
    }

    /// [`super::blocks`] with AVX2.
    ///
    /// # Safety
    /// The machine must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blocks(s: &[u8], filter: &Filter, f: &mut impl FnMut(&Block)) {
        let t = Tables {
            lo: table(&filter.lo),
            hi: table(&filter.hi),
            lo0: table(&filter.lo0),
            hi0: table(&filter.hi0),
            lo1: table(&filter.lo1),
            hi1: table(&filter.hi1),
            nib: _mm256_set1_epi8(0x0f),
            zero: _mm256_setzero_si256(),
            ones: _mm256_set1_epi8(-1),
            triggers: _mm256_set1_epi8(TRIGGERS as i8),
            alnum: _mm256_set1_epi8(ALNUM as i8),
        };
        let n = s.len();
        let p = s.as_ptr();
        let mut at = 0;
        // Blocks are handed on eight at a time, so that the vectors stay in registers.
        let mut found = [Block::default(); 8];
        let mut k = 0;
        while at + 33 <= n {
            // SAFETY: `at + 33 <= n`: both loads are inside `s`.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_si256(p.add(at).cast()),
                    _mm256_loadu_si256(p.add(at + 1).cast()),
                )
            };
            if let Some(b) = block(s, at, x, y, &t) {
                found[k] = b;
                k += 1;
                if k == found.len() {
                    found.iter().for_each(&mut *f);
                    k = 0;
                }
            }
            at += 32;
        }
        found[..k].iter().for_each(&mut *f);
        if at < n {
            // The last 1 to 32 bytes, padded with zeros.
            let mut b = [0u8; 64];
            super::copy_short(&mut b, &s[at..]);
            // SAFETY: both loads are inside `b`.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_si256(b.as_ptr().cast()),
                    _mm256_loadu_si256(b.as_ptr().add(1).cast()),
                )
            };
            if let Some(b) = block(s, at, x, y, &t) {
                f(&b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn filter() -> Filter {
        Filter::new(
            &[
                (b'g', b'h'),
                (b'B', b'e'),
                (b'b', b'e'),
                (b's', b'k'),
                (b'A', b'K'),
            ],
            true,
            true,
            true,
        )
    }

    #[test]
    fn short_copies_are_exact() {
        let src: Vec<u8> = (1..=32).collect();
        for n in 0..=32 {
            let mut dst = [0u8; 64];
            copy_short(&mut dst, &src[..n]);
            assert_eq!(&dst[..n], &src[..n], "{n}");
            assert!(dst[n..].iter().all(|&b| b == 0), "{n}");
        }
    }

    #[test]
    fn classes_are_exact() {
        let all = Filter::new(&[], true, true, true);
        let none = Filter::new(&[], false, false, false);
        for b in 0..=255u8 {
            let c = all.class(b);
            assert_eq!(c & ALNUM != 0, b.is_ascii_alphanumeric(), "alnum {b:#x}");
            assert_eq!(c & CARD != 0, b.is_ascii_digit(), "card digit {b:#x}");
            assert_eq!(c & ASSIGN != 0, b == b':' || b == b'=', "assign {b:#x}");
            assert_eq!(c & AT != 0, b == b'@', "@ {b:#x}");
            let c = none.class(b);
            assert_eq!(c & ALNUM != 0, b.is_ascii_alphanumeric(), "alnum {b:#x}");
            assert_eq!(c & (CARD | TRIGGERS), 0, "off {b:#x}");
        }
    }

    #[test]
    fn every_pair_of_the_rules_passes() {
        let pairs: Vec<(u8, u8)> = (0..40u8)
            .map(|i| (b'A' + i % 26, b'a' + (i % 26) * 7 % 26))
            .collect();
        let f = Filter::new(&pairs, false, false, false);
        for &(a, b) in &pairs {
            assert!(f.pair(a, b), "{}{}", a as char, b as char);
        }
        // A filter without pairs lets none through.
        let f = Filter::new(&[], false, false, false);
        assert!((0..=255u8).all(|a| (0..=255u8).all(|b| !f.pair(a, b))));
    }

    fn collect(s: &[u8], f: &Filter, vector: bool) -> Vec<Block> {
        let mut out = Vec::new();
        blocks(s, f, vector, &mut |b| out.push(*b));
        out
    }

    #[test]
    fn marks_are_found() {
        let f = filter();
        // A literal's start at every offset, and a trigger.
        for pad in 0..70 {
            for (mark, is_start) in [(&b"ghp_x"[..], true), (b"x=1", false)] {
                let mut s = vec![b' '; pad];
                s.extend_from_slice(mark);
                for vector in [false, true] {
                    let blocks = collect(&s, &f, vector && super::vector());
                    let at = blocks.iter().find_map(|b| {
                        let m = if is_start { b.starts } else { b.triggers };
                        (m != 0).then(|| b.at + m.trailing_zeros() as usize)
                    });
                    let want = if is_start { pad } else { pad + 1 };
                    assert_eq!(at, Some(want), "pad {pad}");
                }
            }
            // Not at the start of a word.
            let mut s = vec![b'x'; pad + 1];
            s.extend_from_slice(b"ghp_x");
            assert!(collect(&s, &f, false).iter().all(|b| b.starts == 0));
        }
        // A card grouped 4-4-4-4 at every offset: an aligned quad of digits within 15 bytes.
        for pad in 0..40 {
            let mut s = vec![b'x'; pad];
            s.extend_from_slice(b" 4111 1111 1111 1111 ");
            let blocks = collect(&s, &f, super::vector());
            let quad = blocks
                .iter()
                .find_map(|b| (b.quads != 0).then(|| b.at + b.quads.trailing_zeros() as usize))
                .unwrap_or_else(|| panic!("pad {pad}: no quad in {blocks:?}"));
            assert!(
                quad > pad && quad <= pad + 1 + 15,
                "pad {pad}: quad at {quad}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The vector pass and the byte-by-byte pass report the same blocks.
        #[test]
        fn vector_and_scalar_agree(
            s in proptest::collection::vec(
                prop_oneof![
                    Just(b' '), Just(b'='), Just(b':'), Just(b'B'), Just(b'@'), Just(b'-'),
                    Just(b'"'), Just(b'\\'), Just(0xe2u8), Just(0u8), Just(b'g'), Just(b'h'),
                    b'0'..=b'9', b'a'..=b'z', b'A'..=b'Z', any::<u8>()
                ],
                0..300,
            ),
            which in 0..3usize,
        ) {
            let f = match which {
                0 => filter(),
                1 => Filter::new(&[(b'x', b'o')], false, true, false),
                _ => Filter::new(&[], false, false, false),
            };
            if super::vector() {
                prop_assert_eq!(collect(&s, &f, true), collect(&s, &f, false));
            }
        }
    }
}
