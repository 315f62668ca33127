//! The lock-free side of a [`Distribution`]: a sampled cell's bucket counts, two phases of them behind the
//! cell's writer/reader phaser.
//!
//! Sparse and bounded: CloudWatch's range (2^-360 to 2^360) is 721 powers of two, in 46 groups of 16; a group's
//! table and an octave's counts (128 buckets × 2 phases of `u32`, 1 KiB) are allocated the first time a sample
//! falls in them, and kept. A warm sample does three loads (the table, its group, the octave) and one
//! `fetch_add`, and never allocates. A bucket
//! count that passes `u32::MAX` in one period carries into a small list on a cold path instead of wrapping.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::model::distribution::{bucket_index, SUB_BITS};
use crate::model::Distribution;

/// Buckets per octave.
const SUBS: usize = 1 << SUB_BITS;
/// Octaves per group.
const GROUP: usize = 16;
/// The biased exponent of 2^-360, the smallest magnitude CloudWatch takes.
const FIRST_EXPONENT: usize = 1023 - 360;
/// Groups covering 2^-360 to 2^360 (721 octaves).
const GROUPS: usize = 721_usize.div_ceil(GROUP);

/// One octave's bucket counts, per phase.
#[derive(Debug)]
struct Octave {
    counts: [[AtomicU32; SUBS]; 2],
}

#[derive(Debug)]
struct Group {
    octaves: [OnceLock<Box<Octave>>; GROUP],
}

/// A sampled cell's bucket counts.
#[derive(Debug)]
pub(crate) struct Buckets {
    groups: [OnceLock<Box<Group>>; GROUPS],
    zeros: [AtomicU64; 2],
    negatives: [AtomicU64; 2],
    /// Counts past `u32::MAX`: (phase, bucket index, how much), rare enough for a lock.
    carries: Mutex<Vec<(usize, u32, u64)>>,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            groups: std::array::from_fn(|_| OnceLock::new()),
            zeros: [AtomicU64::new(0), AtomicU64::new(0)],
            negatives: [AtomicU64::new(0), AtomicU64::new(0)],
            carries: Mutex::new(Vec::new()),
        }
    }
}

impl Buckets {
    /// Counts `value` (finite, within CloudWatch's range) in phase `slot`.
    #[inline]
    pub(crate) fn record(&self, slot: usize, value: f64) {
        if value > 0.0 {
            let index = bucket_index(value);
            let octave = (index >> SUB_BITS) as usize;
            let at = octave.saturating_sub(FIRST_EXPONENT);
            let group = self.groups[(at / GROUP).min(GROUPS - 1)].get_or_init(new_group);
            let counts = group.octaves[at % GROUP].get_or_init(new_octave);
            let count = &counts.counts[slot][index as usize % SUBS];
            if count.fetch_add(1, Relaxed) == u32::MAX {
                self.carry(slot, index);
            }
        } else if value == 0.0 {
            self.zeros[slot].fetch_add(1, Relaxed);
        } else {
            self.negatives[slot].fetch_add(1, Relaxed);
        }
    }

    /// A bucket count wrapped to 0: the 2^32 it lost is kept aside.
    #[cold]
    fn carry(&self, slot: usize, index: u32) {
        let mut carries = self.carries.lock().unwrap_or_else(PoisonError::into_inner);
        match carries.iter_mut().find(|(s, i, _)| *s == slot && *i == index) {
            Some(entry) => entry.2 += 1 << 32,
            None => carries.push((slot, index, 1 << 32)),
        }
    }

    /// Moves phase `slot`'s counts out, once no sample is inside that phase any more.
    pub(crate) fn take(&self, slot: usize) -> Distribution {
        let mut buckets = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let Some(group) = group.get() else { continue };
            for (o, octave) in group.octaves.iter().enumerate() {
                let Some(octave) = octave.get() else { continue };
                let first = ((FIRST_EXPONENT + g * GROUP + o) << SUB_BITS) as u32;
                for (sub, count) in octave.counts[slot].iter().enumerate() {
                    if count.load(Relaxed) != 0 {
                        buckets.push((first + sub as u32, u64::from(count.swap(0, Relaxed))));
                    }
                }
            }
        }
        let mut carries = self.carries.lock().unwrap_or_else(PoisonError::into_inner);
        if !carries.is_empty() {
            carries.retain(|&(s, index, carried)| {
                if s == slot {
                    buckets.push((index, carried));
                }
                s != slot
            });
        }
        drop(carries);
        Distribution::from_parts(self.zeros[slot].swap(0, Relaxed), self.negatives[slot].swap(0, Relaxed), buckets)
    }
}

#[cold]
fn new_group() -> Box<Group> {
    Box::new(Group { octaves: std::array::from_fn(|_| OnceLock::new()) })
}

#[cold]
fn new_octave() -> Box<Octave> {
    Box::new(Octave { counts: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU32::new(0))) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MAX_VALUE, MIN_VALUE};

    #[test]
    fn each_phase_is_taken_apart_and_left_empty() {
        let b = Buckets::default();
        for v in [1.0, 1.0, 3.5, 0.0, -2.0, MIN_VALUE, MAX_VALUE] {
            b.record(0, v);
        }
        b.record(1, 1000.0);
        let taken = b.take(0);
        assert_eq!((taken.count(), taken.zeros(), taken.negatives()), (7, 1, 1));
        let counts: Vec<_> = taken.buckets().map(|x| (x.lower, x.count)).collect();
        assert_eq!(counts, [(0.0, 1), (MIN_VALUE, 1), (1.0, 2), (3.5, 1), (MAX_VALUE, 1)]);
        assert_eq!(b.take(0), Distribution::default(), "taken: phase 0 is empty");
        assert_eq!(b.take(1).count(), 1, "phase 1 kept its own sample");
    }

    #[test]
    fn a_count_past_u32_max_carries_instead_of_wrapping() {
        let b = Buckets::default();
        b.record(0, 2.0);
        let index = bucket_index(2.0);
        let octave = (index >> SUB_BITS) as usize - FIRST_EXPONENT;
        let cell = &b.groups[octave / GROUP].get().unwrap().octaves[octave % GROUP].get().unwrap().counts[0]
            [index as usize % SUBS];
        cell.store(u32::MAX, Relaxed);
        b.record(0, 2.0);
        b.record(0, 2.0);
        assert_eq!(b.take(0).count(), u64::from(u32::MAX) + 2);
        assert_eq!(b.take(0).count(), 0, "the carry went with its period");
    }
}
