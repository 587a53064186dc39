//! The first pass of the value scan: which 32-byte blocks of a value may hold the start of a
//! secret, with the bit masks the exact search needs for them.
//!
//! Every rule's match has one of three marks, each cheap to look for 32 bytes at a time:
//!
//! - a *trigger byte*: `=` or `:` (an assignment, a URL's credentials), `B` or `b` (`Bearer `,
//!   `basic `, `-----BEGIN `), `@` (an e-mail address, when that rule is on);
//! - an *aligned 8-byte group of token bytes* (letters, digits, `+-./:=@_`): every prefixed token
//!   is at least 15 bytes long, and any run of 15 token bytes holds a whole group of the grid of
//!   eight, starting at most seven bytes after the token;
//! - an *aligned 4-byte group of digits*: every card number holds one, however it is grouped
//!   (4-4-4-4, 4-6-5, 4-6-4 or none), starting at most fifteen bytes after the card.
//!
//! A block with none of them is passed over. The classes come from two 16-entry tables indexed
//! by each byte's two nibbles, whose AND gives the byte's class bits ([`class`]), so that one
//! block costs a dozen vector instructions where AVX2 is available, and the same results are
//! computed byte by byte elsewhere.

/// Class bits of a byte (see [`class`]). Every class is a subset of the token bytes, so a byte is
/// a token byte exactly when its class is not zero.
pub(super) const DIGIT: u8 = 0x80;
/// `:` and `=`.
pub(super) const ASSIGN: u8 = 0x01;
/// `B` and `b`.
pub(super) const LETTER_B: u8 = 0x02;
/// `A`–`O` and `a`–`o`.
const LETTERS_1: u8 = 0x04;
/// `P`–`Z` and `p`–`z`.
const LETTERS_2: u8 = 0x08;
/// `_`.
const UNDERSCORE: u8 = 0x10;
/// `+`, `-`, `.`, `/`.
const SYMBOL: u8 = 0x20;
/// `@`.
pub(super) const AT: u8 = 0x40;
/// Letters and digits.
pub(super) const ALNUM: u8 = DIGIT | LETTERS_1 | LETTERS_2;

/// The classes of the high nibble.
const HI: [u8; 16] = [
    0,
    0,
    SYMBOL,
    DIGIT | ASSIGN,
    LETTER_B | LETTERS_1 | AT,
    LETTERS_2 | UNDERSCORE,
    LETTER_B | LETTERS_1,
    LETTERS_2,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
];

/// The classes of the low nibble.
const LO: [u8; 16] = {
    let mut t = [0u8; 16];
    t[0] = DIGIT | LETTERS_2 | AT;
    let mut i = 1;
    while i <= 9 {
        t[i] = DIGIT | LETTERS_1 | LETTERS_2;
        i += 1;
    }
    t[2] |= LETTER_B;
    t[0xA] = ASSIGN | LETTERS_1 | LETTERS_2;
    t[0xB] = SYMBOL | LETTERS_1;
    t[0xC] = LETTERS_1;
    t[0xD] = ASSIGN | SYMBOL | LETTERS_1;
    t[0xE] = SYMBOL | LETTERS_1;
    t[0xF] = SYMBOL | LETTERS_1 | UNDERSCORE;
    t
};

/// The class bits of `b`.
#[inline]
pub(super) const fn class(b: u8) -> u8 {
    HI[(b >> 4) as usize] & LO[(b & 15) as usize]
}

/// What the exact search needs of a block that may hold a secret's start: bit `i` of each mask
/// is about `s[at + i]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Block {
    /// Where the block starts in the value.
    pub(super) at: usize,
    /// Letters and digits.
    pub(super) alnum: u32,
    /// Trigger bytes (those of the classes asked for).
    pub(super) triggers: u32,
    /// The bytes of the aligned 8-byte groups made only of token bytes.
    pub(super) lanes: u32,
    /// The bytes of the aligned 4-byte groups made only of digits.
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

/// Calls `f` with each block of `s` that may hold a secret's start, in order. `triggers` is the
/// set of trigger classes ([`ASSIGN`], [`LETTER_B`], [`AT`]). Blocks start every 32 bytes, so that
/// groups of four bytes are aligned the same way everywhere; after the last whole block come the
/// 32 bytes ending at the last whole group of four (with the triggers and groups of four already
/// reported cleared), and the trigger bytes of the last bytes (fewer than four, which hold no
/// whole group). The groups of eight of that last block may be shifted by four from the others:
/// they are all reported, so that a run of token bytes crossing into it still shows a group no
/// more than seven bytes after its start. A value shorter than 32 bytes is read as if padded with
/// zeros.
#[inline]
pub(super) fn blocks(s: &[u8], triggers: u8, vector: bool, f: &mut impl FnMut(&Block)) {
    #[cfg(target_arch = "x86_64")]
    if vector {
        #[allow(unsafe_code)]
        // SAFETY: `vector` is true only when `vector()` found AVX2 on this machine.
        unsafe {
            avx2::blocks(s, triggers, f)
        };
        return;
    }
    let _ = vector;
    blocks_scalar(s, triggers, f);
}

/// The masks of the 32 bytes of `b`, byte by byte.
fn block_scalar(b: &[u8; 32], at: usize, triggers: u8) -> Option<Block> {
    let mut block = Block {
        at,
        ..Block::default()
    };
    let mut token = 0u32;
    let mut digit = 0u32;
    for (i, &x) in b.iter().enumerate() {
        let c = class(x);
        token |= u32::from(c != 0) << i;
        digit |= u32::from(c & DIGIT != 0) << i;
        block.alnum |= u32::from(c & ALNUM != 0) << i;
        block.triggers |= u32::from(c & triggers != 0) << i;
    }
    for g in 0..4 {
        if (token >> (8 * g)) & 0xff == 0xff {
            block.lanes |= 0xff << (8 * g);
        }
    }
    for g in 0..8 {
        if (digit >> (4 * g)) & 0xf == 0xf {
            block.quads |= 0xf << (4 * g);
        }
    }
    (block.triggers | block.lanes | block.quads != 0).then_some(block)
}

fn blocks_scalar(s: &[u8], triggers: u8, f: &mut impl FnMut(&Block)) {
    let mut chunks = s.chunks_exact(32);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut b = [0u8; 32];
        b.copy_from_slice(chunk);
        if let Some(block) = block_scalar(&b, at, triggers) {
            f(&block);
        }
        at += 32;
    }
    let rest = chunks.remainder().len();
    if rest == 0 {
        return;
    }
    let mut b = [0u8; 32];
    if s.len() < 32 {
        b[..rest].copy_from_slice(s);
        if let Some(block) = block_scalar(&b, 0, triggers) {
            f(&block);
        }
        return;
    }
    let (t, fresh) = tail(s.len());
    if fresh != 0 {
        b.copy_from_slice(&s[t..t + 32]);
        if let Some(block) = block_scalar(&b, t, triggers) {
            report_fresh(block, fresh, f);
        }
    }
    last_bytes(s, triggers, f);
}

/// Where the last block of a value of `n >= 32` bytes (not a multiple of 32) starts, aligned to
/// four, and the bits of its bytes that no earlier block covered.
#[inline]
fn tail(n: usize) -> (usize, u32) {
    let t = n - 32 - n % 4;
    let covered = n - n % 32 - t;
    (t, (u64::from(u32::MAX) << covered) as u32)
}

#[inline]
fn report_fresh(mut block: Block, fresh: u32, f: &mut impl FnMut(&Block)) {
    block.triggers &= fresh;
    block.quads &= fresh;
    if block.triggers | block.lanes | block.quads != 0 {
        f(&block);
    }
}

/// The trigger bytes among the last `n % 4` bytes of a value of `n >= 32` bytes.
#[inline]
fn last_bytes(s: &[u8], triggers: u8, f: &mut impl FnMut(&Block)) {
    let n = s.len();
    let mut bits = 0u32;
    for (i, &b) in s.iter().enumerate().skip(n - n % 4) {
        bits |= u32::from(class(b) & triggers != 0) << (i + 32 - n);
    }
    if bits != 0 {
        f(&Block {
            at: n - 32,
            triggers: bits,
            ..Block::default()
        });
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{Block, ALNUM, HI, LO};
    use std::arch::x86_64::*;

    /// The vectors of one block: class bits, token lanes, digit quads, triggers.
    macro_rules! classify {
        ($x:expr, $lo:expr, $hi:expr, $nib:expr, $zero:expr, $ones:expr, $trig:expr) => {{
            let x = $x;
            let cls = _mm256_and_si256(
                _mm256_shuffle_epi8($lo, _mm256_and_si256(x, $nib)),
                _mm256_shuffle_epi8($hi, _mm256_and_si256(_mm256_srli_epi16(x, 4), $nib)),
            );
            let not_token = _mm256_cmpeq_epi8(cls, $zero);
            let lanes = _mm256_cmpeq_epi64(not_token, $zero);
            let digits = _mm256_cmpgt_epi8($zero, cls);
            let quads = _mm256_cmpeq_epi32(digits, $ones);
            let trig = _mm256_and_si256(cls, $trig);
            (cls, lanes, quads, trig)
        }};
    }

    /// The masks of a block whose vectors were found interesting.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn record(
        at: usize,
        cls: __m256i,
        lanes: __m256i,
        quads: __m256i,
        trig: __m256i,
        alnum: __m256i,
        zero: __m256i,
    ) -> Block {
        Block {
            at,
            alnum: !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(cls, alnum), zero))
                as u32),
            triggers: !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(trig, zero)) as u32),
            lanes: _mm256_movemask_epi8(lanes) as u32,
            quads: _mm256_movemask_epi8(quads) as u32,
        }
    }

    /// [`super::blocks`] with AVX2.
    ///
    /// # Safety
    /// The machine must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blocks(s: &[u8], triggers: u8, f: &mut impl FnMut(&Block)) {
        let lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(LO.as_ptr().cast()));
        let hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(HI.as_ptr().cast()));
        let nib = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let ones = _mm256_set1_epi8(-1);
        let trig = _mm256_set1_epi8(triggers as i8);
        let alnum = _mm256_set1_epi8(ALNUM as i8);
        let n = s.len();
        let p = s.as_ptr();
        let mut at = 0;
        // Two blocks at a time, one test for both.
        while at + 64 <= n {
            // SAFETY: `at + 64 <= n`: both loads are inside `s`.
            let (xa, xb) = unsafe {
                (
                    _mm256_loadu_si256(p.add(at).cast()),
                    _mm256_loadu_si256(p.add(at + 32).cast()),
                )
            };
            let (ca, la, qa, ta) = classify!(xa, lo, hi, nib, zero, ones, trig);
            let (cb, lb, qb, tb) = classify!(xb, lo, hi, nib, zero, ones, trig);
            let any = _mm256_or_si256(
                _mm256_or_si256(_mm256_or_si256(la, qa), ta),
                _mm256_or_si256(_mm256_or_si256(lb, qb), tb),
            );
            if _mm256_testz_si256(any, any) == 0 {
                let a = _mm256_or_si256(_mm256_or_si256(la, qa), ta);
                if _mm256_testz_si256(a, a) == 0 {
                    f(&record(at, ca, la, qa, ta, alnum, zero));
                }
                let b = _mm256_or_si256(_mm256_or_si256(lb, qb), tb);
                if _mm256_testz_si256(b, b) == 0 {
                    f(&record(at + 32, cb, lb, qb, tb, alnum, zero));
                }
            }
            at += 64;
        }
        if at + 32 <= n {
            // SAFETY: `at + 32 <= n`.
            let x = unsafe { _mm256_loadu_si256(p.add(at).cast()) };
            let (c, l, q, t) = classify!(x, lo, hi, nib, zero, ones, trig);
            let a = _mm256_or_si256(_mm256_or_si256(l, q), t);
            if _mm256_testz_si256(a, a) == 0 {
                f(&record(at, c, l, q, t, alnum, zero));
            }
            at += 32;
        }
        if at == n {
            return;
        }
        let (x, start, fresh) = if n >= 32 {
            let (t, fresh) = super::tail(n);
            // SAFETY: `t + 32 <= n`.
            (unsafe { _mm256_loadu_si256(p.add(t).cast()) }, t, fresh)
        } else {
            let mut b = [0u8; 32];
            b[..n].copy_from_slice(s);
            // SAFETY: `b` is 32 bytes.
            (unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }, 0, !0u32)
        };
        if fresh != 0 {
            let (c, l, q, t) = classify!(x, lo, hi, nib, zero, ones, trig);
            let a = _mm256_or_si256(_mm256_or_si256(l, q), t);
            if _mm256_testz_si256(a, a) == 0 {
                super::report_fresh(record(start, c, l, q, t, alnum, zero), fresh, f);
            }
        }
        if n >= 32 {
            super::last_bytes(s, triggers, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classes_are_exact() {
        for b in 0..=255u8 {
            let c = class(b);
            let token = b.is_ascii_alphanumeric() || b"+-./:=@_".contains(&b);
            assert_eq!(c != 0, token, "token byte {b:#x}");
            assert_eq!(c & DIGIT != 0, b.is_ascii_digit(), "digit {b:#x}");
            assert_eq!(c & ALNUM != 0, b.is_ascii_alphanumeric(), "alnum {b:#x}");
            assert_eq!(c & ASSIGN != 0, b == b':' || b == b'=', "assign {b:#x}");
            assert_eq!(c & LETTER_B != 0, b == b'B' || b == b'b', "B {b:#x}");
            assert_eq!(c & AT != 0, b == b'@', "@ {b:#x}");
        }
    }

    fn collect(s: &[u8], triggers: u8, vector: bool) -> Vec<Block> {
        let mut out = Vec::new();
        blocks(s, triggers, vector, &mut |b| out.push(*b));
        out
    }

    #[test]
    fn marks_are_found() {
        // A token of 15 bytes at every offset: a block with a lane at most seven bytes after
        // its start.
        let token = b"ghp_0123456789a";
        for pad in 0..70 {
            let mut s = vec![b' '; pad];
            s.extend_from_slice(token);
            s.extend_from_slice(b" tail");
            for vector in [false, true] {
                let blocks = collect(&s, ASSIGN | LETTER_B, vector && super::vector());
                let lane = blocks
                    .iter()
                    .find_map(|b| (b.lanes != 0).then(|| b.at + b.lanes.trailing_zeros() as usize));
                let lane = lane.expect("a lane");
                assert!(lane >= pad && lane <= pad + 7, "pad {pad}: lane at {lane}");
            }
        }
        // A card grouped 4-4-4-4 at every offset: an aligned quad of digits within 15 bytes.
        for pad in 0..40 {
            let mut s = vec![b'x'; pad];
            s.extend_from_slice(b" 4111 1111 1111 1111 ");
            let blocks = collect(&s, 0, super::vector());
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
                    Just(b'"'), Just(b'\\'), Just(0xe2u8), Just(0u8),
                    b'0'..=b'9', b'a'..=b'z', b'A'..=b'Z', any::<u8>()
                ],
                0..300,
            ),
            triggers in prop_oneof![Just(ASSIGN | LETTER_B), Just(ASSIGN | LETTER_B | AT), Just(0u8)],
        ) {
            if super::vector() {
                prop_assert_eq!(collect(&s, triggers, true), collect(&s, triggers, false));
            }
        }
    }
}
