//! How a cached handle recognises the `metrics::Key` it was found for, in the fewest calls into `metrics`.
//!
//! A `Key`'s parts can only be read through calls into `metrics` (`Key::name`, `Key::labels`, `Label::key`,
//! `Label::value`; none is inlined across crates), and on a cached key with two labels those calls and the byte
//! comparisons were most of the recorder's cost. So:
//! - **Labels are read through their `Hash`.** `Label`'s derived `Hash` is generic, so it is compiled into this
//!   crate and inlined: it hands [`LabelsMatch`] each part's bytes (then a `0xff` byte) with no call. Should
//!   `metrics` ever hash a label differently, nothing matches and every lookup misses (the unit tests say so).
//! - **A part at the same address is the same text.** The handle holds the store's own copy of the key
//!   ([`PinnedKey`]; the store keeps keys retained, so the copy does not allocate), and with it the address of
//!   each part. Two live strings at one address with one length are the same bytes: a `&'static str` name or
//!   label key (what the macros make) matches by its address, and only the other parts (label values built per
//!   call, formatted names) are compared byte by byte.
//!
//! On `counter!` with two `String` label values, against comparing every part's bytes after `Label::key` and
//! `Label::value`: our part of the call 14 -> 11 ns (`recorder_cost 3000 2_labels`).

use std::hash::{Hash, Hasher};

use metrics::Key;

use super::same_bytes;

/// A cached handle's key: its text, the store's own copy of it, and where its parts are, in memory (their
/// addresses in the copy) and in the text (their ends).
///
/// Laid out in this order (`repr(C)`) so that a lookup of a key without labels reads the handle's first fields.
#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct PinnedKey {
    /// The name's address.
    name_at: usize,
    /// The name's length (where it ends in the text) and how many labels the key has; for a key whose text is
    /// longer than `u32::MAX` bytes, `u32::MAX` labels, which no key has: it never matches (it is not cached).
    name_end: u32,
    label_count: u32,
    /// The address and end in the text of each label's key and value, in order.
    labels: Vec<(usize, usize)>,
    /// The name, then each label's key and value, one after the other.
    text: String,
    /// Held so that the parts stay at their addresses for as long as the handle compares them.
    key: Option<Key>,
}

impl PinnedKey {
    /// `key`'s text, and `pinned`, the store's copy of it, with the addresses of its parts: a part's address is
    /// kept only where the copy has the same bytes in the same place (`metrics` keys are equal whatever their
    /// labels' order, so the store's copy may list them in another). Elsewhere, and with no copy, the address is
    /// 0, which is no string's, and the part is compared by its bytes. Reuses the buffers: no allocation once they
    /// are large enough (cloning the store's copy does not allocate).
    pub(super) fn set(&mut self, key: &Key, pinned: Option<Key>) {
        self.text.clear();
        self.labels.clear();
        self.text.push_str(key.name());
        let name_end = self.text.len();
        for label in key.labels() {
            self.text.push_str(label.key());
            self.labels.push((0, self.text.len()));
            self.text.push_str(label.value());
            self.labels.push((0, self.text.len()));
        }
        self.name_at = 0;
        // A key of more labels than fit in a `u32` is never cached (past 29 names they are cut, not cached).
        (self.name_end, self.label_count) = if u32::try_from(self.text.len()).is_ok() {
            (name_end as u32, (self.labels.len() / 2) as u32)
        } else {
            (0, u32::MAX)
        };
        if let Some(pinned) = &pinned {
            let text = self.text.as_bytes();
            let at = |start: usize, end: usize, part: &str| {
                let same = text.get(start..end) == Some(part.as_bytes());
                if same {
                    part.as_ptr().addr()
                } else {
                    0
                }
            };
            self.name_at = at(0, name_end, pinned.name());
            let parts = pinned.labels().flat_map(|label| [label.key(), label.value()]);
            let mut start = name_end;
            for ((addr, end), part) in self.labels.iter_mut().zip(parts) {
                *addr = at(start, *end, part);
                start = *end;
            }
        }
        self.key = pinned;
    }

    /// Whether `key` is this key: each part by its address where it is the pinned key's own, else by its bytes.
    #[allow(clippy::inline_always, reason = "part of the recorder's lookup, inlined as `CachedCell::serves` is")]
    #[inline(always)]
    pub(super) fn matches(&self, key: &Key) -> bool {
        let labels = key.labels();
        if self.label_count as usize != labels.len() {
            return false;
        }
        let (text, name, name_end) = (self.text.as_bytes(), key.name(), self.name_end as usize);
        let same_name = (name.as_ptr().addr() == self.name_at && name.len() == name_end)
            || text.get(..name_end).is_some_and(|cached| same_bytes(cached, name.as_bytes()));
        if !same_name {
            return false;
        }
        let mut parts = LabelsMatch { text, parts: &self.labels, start: name_end, same: true };
        for label in labels {
            label.hash(&mut parts);
            if !parts.same {
                return false;
            }
        }
        parts.parts.is_empty()
    }
}

/// Compares the parts a `metrics::Label`'s derived `Hash` writes (its key's bytes, a `0xff` byte, its value's
/// bytes, a `0xff` byte) with the parts of a key's text from `start` on, at the addresses and ending where
/// `parts` says: any other write is a mismatch.
struct LabelsMatch<'a> {
    text: &'a [u8],
    parts: &'a [(usize, usize)],
    start: usize,
    same: bool,
}

impl Hasher for LabelsMatch<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let Some((&(at, end), parts)) = self.parts.split_first() else {
            self.same = false;
            return;
        };
        // The bytes' own comparison is a call (`bcmp`): inlining `same_bytes` here keeps `Label::hash` from being
        // inlined, which costs more than it saves.
        self.same &= (bytes.as_ptr().addr() == at && bytes.len() == end.wrapping_sub(self.start))
            || self.text.get(self.start..end) == Some(bytes);
        self.start = end;
        self.parts = parts;
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.same &= byte == 0xff;
    }

    #[inline]
    fn write_usize(&mut self, _: usize) {
        self.same = false;
    }

    #[inline]
    fn write_u64(&mut self, _: u64) {
        self.same = false;
    }

    fn finish(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use metrics::Label;

    use super::*;

    /// A handle's key for `key`, pinned to `pinned`.
    fn cached(key: &Key, pinned: Option<Key>) -> PinnedKey {
        let mut parts = PinnedKey::default();
        parts.set(key, pinned);
        parts
    }

    /// `name` with labels whose keys are literals and whose values are built now (new addresses).
    fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
        Key::from_parts(name, labels.iter().map(|&(k, v)| Label::new(k, v.to_owned())).collect::<Vec<_>>())
    }

    #[test]
    fn a_key_matches_its_own_parts_by_address_or_by_bytes_and_no_other_key() {
        let stored = key("requests", &[("method", "GET"), ("status", "200")]).to_retained();
        for pinned in [Some(stored.clone()), None] {
            let parts = cached(&stored, pinned);
            assert!(parts.matches(&stored), "the stored key itself: every part by address");
            assert!(parts.matches(&key("requests", &[("method", "GET"), ("status", "200")])), "values by bytes");
            let owned = Key::from_parts(
                String::from("requests"),
                vec![Label::new(String::from("method"), "GET"), Label::new("status", "200")],
            );
            assert!(parts.matches(&owned), "every part built now");
            for other in [
                key("requests", &[("method", "GET"), ("status", "201")]),
                key("requests", &[("method", "PUT"), ("status", "200")]),
                key("requests", &[("methox", "GET"), ("status", "200")]),
                key("requests", &[("status", "200"), ("method", "GET")]),
                key("requests", &[("method", "GET")]),
                key("requests", &[("method", "GET"), ("status", "200"), ("route", "/")]),
                key("requests", &[("method", "GE"), ("status", "T200")]),
                key("request", &[("method", "GET"), ("status", "200")]),
                key("requests", &[]),
            ] {
                assert!(!parts.matches(&other), "{other:?}");
            }
        }
    }

    #[test]
    fn a_part_at_the_pinned_address_matches_only_with_its_length() {
        static TEXT: &str = "requests.total";
        let name = |name: &'static str| Key::from_static_name(name);
        let parts = cached(&name("requests"), Some(name(&TEXT[..8])));
        assert_eq!(parts.name_at, TEXT.as_ptr().addr(), "the name is matched by its address");
        assert!(parts.matches(&name(&TEXT[..8])), "the same address and length");
        assert!(parts.matches(&name("requests")), "another address, the same bytes");
        assert!(!parts.matches(&name(TEXT)), "the same address, longer");
        // The same for a label's key and value.
        let labelled =
            |key: &'static str, value: &'static str| name("requests").with_extra_labels(vec![Label::new(key, value)]);
        let pinned = labelled(&TEXT[..6], &TEXT[9..]);
        let parts = cached(&labelled("reques", "total"), Some(pinned.clone()));
        assert_eq!(parts.labels, [(TEXT.as_ptr().addr(), 14), (TEXT[9..].as_ptr().addr(), 19)]);
        assert!(parts.matches(&pinned));
        assert!(!parts.matches(&labelled(&TEXT[..7], &TEXT[9..])), "a label key at the same address, longer");
        assert!(!parts.matches(&labelled(&TEXT[..6], &TEXT[8..13])), "a value as long, at another address");
    }

    #[test]
    fn the_stores_copy_with_its_labels_in_another_order_lends_no_address() {
        // `metrics` keys are equal whatever their labels' order: the store's copy may list them in another.
        let key = |labels: [(&'static str, &'static str); 2]| {
            Key::from_static_name("copy").with_extra_labels(labels.iter().map(|&(k, v)| Label::new(k, v)).collect())
        };
        let registered = key([("src", "a"), ("dst", "b")]);
        let parts = cached(&registered, Some(key([("dst", "b"), ("src", "a")])));
        assert!(parts.labels.iter().all(|&(at, _)| at == 0), "{:?}", parts.labels);
        assert!(parts.matches(&registered));
        assert!(!parts.matches(&key([("dst", "a"), ("src", "b")])), "the label names swapped");
    }
}
