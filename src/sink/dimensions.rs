//! [`merge_labels`]: a counter's labels added to the dimensions every metric carries, as both sinks publish them.

use std::ops::Range;

/// Adds a counter's `labels` to `pairs`, which holds the dimensions every metric of the sink carries (InstanceID,
/// then the default dimensions at `defaults`). A destination refuses a name given twice, so a label of a name
/// already there takes its place: the last value is published. Returns whether a label repeated a name other
/// than a default dimension's the first time (InstanceID, another label, or a default a label replaced already):
/// such a repeat is counted as `dimensions_deduplicated`, where a label replacing a default dimension is not.
pub(crate) fn merge_labels<'a>(
    pairs: &mut Vec<(&'a str, &'a str)>,
    defaults: Range<usize>,
    labels: impl Iterator<Item = (&'a str, &'a str)>,
) -> bool {
    let mut deduplicated = false;
    // The defaults a label replaced.
    let mut replaced: Vec<usize> = Vec::new();
    for (name, value) in labels {
        match pairs.iter().position(|(seen, _)| *seen == name) {
            Some(at) => {
                pairs[at].1 = value;
                if defaults.contains(&at) && !replaced.contains(&at) {
                    replaced.push(at);
                } else {
                    deduplicated = true;
                }
            }
            None => pairs.push((name, value)),
        }
    }
    deduplicated
}
