//! Byte checks of the text a dump sends (names, dimensions, JSON strings), eight bytes at a time (a text of
//! four to seven bytes as one word).
//!
//! Every sink checks each name and dimension of every counter of every dump, and the EMF sink looks for what a
//! JSON string escapes in each: byte by byte, those loops were a third of an EMF flush's own instructions.
//! Each check here reads the text as 64-bit words (the last one overlapping the one before it) and tests all
//! eight bytes at once with the usual carry tricks, each exact in saying whether *any* byte matches (a carry
//! or borrow that marks a byte wrongly comes only from a lower byte that matched).

/// `0x01` in every byte.
const ONES: u64 = u64::from_le_bytes([0x01; 8]);
/// `0x80` in every byte.
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// Bytes of `x` under `n` (at most 0x80) marked by their high bit.
#[inline]
const fn under(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGHS
}

/// Bytes of `x` equal to `b` marked by their high bit.
#[inline]
const fn equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * b as u64);
    y.wrapping_sub(ONES) & !y & HIGHS
}

/// Bytes of `x` over 0x7e (DEL and every byte that is not ASCII) marked by their high bit.
#[inline]
const fn over_tilde(x: u64) -> u64 {
    (x.wrapping_add(ONES) | x) & HIGHS
}

/// Hands `word` 64-bit words that together hold every byte of `bytes` (at least four long) and no other: from
/// eight bytes on, every word of it, the last one overlapping the one before; under eight, one word of its first
/// four and its last four bytes (overlapping). A test of any byte of the words then reads `bytes` exactly.
#[inline]
fn each_word(bytes: &[u8], mut word: impl FnMut(u64)) {
    if bytes.len() < 8 {
        let half = |at: usize| {
            let mut w = [0; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u64::from(u32::from_le_bytes(w))
        };
        word(half(0) | half(bytes.len() - 4) << 32);
        return;
    }
    let read = |at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let last = bytes.len() - 8;
    word(read(last));
    let mut at = 0;
    while at < last {
        word(read(at));
        at += 8;
    }
}

/// The bytes printable ASCII is not (control characters, DEL and every byte that is not ASCII) among the eight
/// of `x`, marked by their high bit; and whether `b` is one.
#[inline]
const fn unprintable(x: u64) -> u64 {
    under(x, 0x20) | over_tilde(x)
}

#[inline]
const fn unprintable_byte(b: u8) -> bool {
    b < 0x20 || b > 0x7e
}

/// The quotes and backslashes (which a JSON string escapes besides control characters) among the eight bytes of
/// `x`, marked by their high bit; and whether `b` is one.
#[inline]
const fn quote_or_backslash(x: u64) -> u64 {
    equal(x, b'"') | equal(x, b'\\')
}

#[inline]
const fn quote_or_backslash_byte(b: u8) -> bool {
    b == b'"' || b == b'\\'
}

/// Whether `marks` (a test of one word) marks a byte of any word of `bytes`; bytes under four long are tested
/// one by one with `byte`.
#[inline]
fn any(bytes: &[u8], marks: impl Fn(u64) -> u64, byte: impl Fn(u8) -> bool) -> bool {
    if bytes.len() < 4 {
        return bytes.iter().any(|&b| byte(b));
    }
    let mut found = 0;
    each_word(bytes, |x| found |= marks(x));
    found != 0
}

/// Whether every byte of `s` is printable ASCII (0x20 to 0x7e): no control character, no DEL, nothing else.
#[inline]
pub(crate) fn printable_ascii(s: &str) -> bool {
    printable(s.as_bytes())
}

/// Whether `s` has a byte a JSON string escapes: a control character, a quote or a backslash.
#[inline]
pub(crate) fn needs_json_escape(s: &str) -> bool {
    escaped(s.as_bytes())
}

/// Whether every byte of `s` is printable ASCII ([`printable_ascii`]), and if so, whether it is also free of
/// what a JSON string escapes (a quote, a backslash), in one pass: `None` when it is not printable.
#[inline]
pub(crate) fn printable_ascii_plain(s: &str) -> Option<bool> {
    let bytes = s.as_bytes();
    let (bad, quoted) = if bytes.len() < 4 {
        (bytes.iter().any(|&b| unprintable_byte(b)), bytes.iter().any(|&b| quote_or_backslash_byte(b)))
    } else {
        let (mut bad, mut quoted) = (0, 0);
        each_word(bytes, |x| {
            bad |= unprintable(x);
            quoted |= quote_or_backslash(x);
        });
        (bad != 0, quoted != 0)
    };
    (!bad).then_some(!quoted)
}

#[inline]
fn printable(bytes: &[u8]) -> bool {
    !any(bytes, unprintable, unprintable_byte)
}

#[inline]
fn escaped(bytes: &[u8]) -> bool {
    any(bytes, |x| under(x, 0x20) | quote_or_backslash(x), |b| b < 0x20 || quote_or_backslash_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every place of texts of 0 to 24 bytes, among printable bytes and among bytes that
    /// carry or borrow (0x00, 0x1f, 0x7f, 0xff) on either side: each check says what a byte-by-byte loop says.
    #[test]
    fn the_word_checks_agree_with_a_byte_loop_for_every_byte_at_every_place() {
        let printable_bytes = |s: &[u8]| s.iter().all(|&b| (0x20..0x7f).contains(&b));
        let escaped_bytes = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for background in [b'a', b' ', b'~', 0x00, 0x1f, 0x7f, 0xff, b'"', b'\\', 0x21, 0x80] {
            for len in 0..=24 {
                for at in 0..len.max(1) {
                    for b in 0..=255u8 {
                        let mut bytes = vec![background; len];
                        if len > 0 {
                            bytes[at] = b;
                        }
                        assert_eq!(printable(&bytes), printable_bytes(&bytes), "printable {bytes:02x?}");
                        assert_eq!(escaped(&bytes), escaped_bytes(&bytes), "escaped {bytes:02x?}");
                        if let Ok(text) = std::str::from_utf8(&bytes) {
                            let both = printable_bytes(&bytes).then_some(!escaped_bytes(&bytes));
                            assert_eq!(printable_ascii_plain(text), both, "both {bytes:02x?}");
                        }
                    }
                }
            }
        }
        assert!(printable_ascii("service.op17.calls") && !printable_ascii("caf\u{e9} au lait, tr\u{e8}s chaud"));
        assert!(needs_json_escape("a long \"quoted\" name") && !needs_json_escape("a long plain name, \u{e9}"));
    }
}
