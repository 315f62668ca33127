//! A lookup of an existing counter by its name and labels as borrowed text, with no `metrics::Key` built.
//!
//! A front-end whose label values are borrowed from a span or an event (neither `'static` nor owned) would have
//! to copy them into a `Key` of its own to ask the map, and take that key apart again after (`Key` holds only
//! `'static`, owned or shared text). Here the map is asked directly: the key's hash is worked out from the
//! parts exactly as `metrics` works it out (the map's hasher passes that hash through), then the shard holding
//! it is searched under its read lock, each candidate compared part by part.
//!
//! Should a future `metrics` hash keys differently, the hashes stop matching and every lookup here misses; the
//! callers then build the `Key` and ask as before, so nothing is lost but time (a unit test says so first; the
//! crate requires the `metrics` whose hash this is, 0.24.5 on, in its manifest).

use std::sync::Arc;

use metrics::Key;
use rapidhash::v3::{rapidhash_v3_nano_inline, RapidSecrets};

use super::cell::CounterCell;
use super::{Fit, Store};
use crate::model::CounterType;

/// `metrics`' hash of the key `name` + `labels` (`Key::get_hash`): rapidhash nano of the name, plus for each
/// label the hash of its key xor that of its value, each part with its own seed. Label order does not change it.
fn key_hash<'k, 'v>(name: &str, labels: impl Iterator<Item = (&'k str, &'v str)>) -> u64 {
    const NAME: RapidSecrets = RapidSecrets::seed_cpp(0);
    const LABEL_KEY: RapidSecrets = RapidSecrets::seed_cpp(1);
    const LABEL_VALUE: RapidSecrets = RapidSecrets::seed_cpp(2);
    let hash = |text: &str, secrets: &RapidSecrets| rapidhash_v3_nano_inline::<false, false>(text.as_bytes(), secrets);
    labels.fold(hash(name, &NAME), |sum, (key, value)| {
        sum.wrapping_add(hash(key, &LABEL_KEY) ^ hash(value, &LABEL_VALUE))
    })
}

/// Whether `key` is `name` + `labels`, its labels in the same order.
fn is_key<'k, 'v>(key: &Key, name: &str, mut labels: impl ExactSizeIterator<Item = (&'k str, &'v str)>) -> bool {
    let stored = key.labels();
    stored.len() == labels.len()
        && key.name() == name
        && stored.zip(&mut labels).all(|(label, (k, v))| label.key() == k && label.value() == v)
}

impl Store {
    /// The live cell of the counter `name` + `labels`, if it exists and serves a counter of type `kind` as `fit`
    /// says: its hash worked out from the parts ([`key_hash`]), one shard read lock, no allocation.
    /// `None` also when the store holds the key with its labels in another order (`metrics` keys are equal
    /// whatever their labels' order); the caller then asks with a built `Key`.
    pub(crate) fn existing_by_parts<'k, 'v>(
        &self,
        name: &str,
        labels: impl ExactSizeIterator<Item = (&'k str, &'v str)> + Clone,
        kind: CounterType,
        fit: Fit,
    ) -> Option<Arc<CounterCell>> {
        let hash = key_hash(name, labels.clone());
        // The map's hasher passes a key's hash through, so this is the shard and the hash the map uses.
        let shard = self.map.shards().get(self.map.determine_shard(hash as usize))?.read();
        let (_, cell) = shard.get(hash, |(key, _)| is_key(key, name, labels.clone()))?;
        Some(cell.get()).filter(|cell| fit.serves(cell.kind(), kind)).map(Arc::clone)
    }
}

#[cfg(test)]
mod tests {
    use metrics::Label;

    use super::*;

    #[test]
    fn the_hash_of_the_parts_is_the_hash_metrics_gives_the_key() {
        let labelled = |name: &'static str, labels: &[(&'static str, &'static str)]| {
            let key = Key::from_parts(name, labels.iter().map(|&(k, v)| Label::new(k, v)).collect::<Vec<_>>());
            assert_eq!(key_hash(name, labels.iter().copied()), key.get_hash(), "{name} {labels:?}");
        };
        labelled("requests", &[]);
        labelled("", &[]);
        labelled("requests", &[("method", "GET")]);
        labelled("requests", &[("method", "GET"), ("status", "200")]);
        labelled("a.name.longer.than.forty.eight.bytes.so.the.hash.takes.its.long.path", &[("k", "")]);
        labelled("requests", &[("", ""), ("route", "/orders/{id}/items/{item}/with/a/long/path/too")]);
    }

    #[test]
    fn a_key_is_its_parts_only_with_the_same_name_and_labels_in_the_same_order() {
        let key = Key::from_parts("requests", vec![Label::new("method", "GET"), Label::new("status", "200")]);
        let is = |name, labels: &[(&str, &str)]| is_key(&key, name, labels.iter().copied());
        assert!(is("requests", &[("method", "GET"), ("status", "200")]));
        assert!(!is("requests", &[("method", "GET"), ("status", "201")]), "another value");
        assert!(!is("requests", &[("method", "GET"), ("state", "200")]), "another label name");
        assert!(!is("requests", &[("method", "GET")]), "fewer labels");
        assert!(!is("requests", &[("method", "GET"), ("status", "200"), ("route", "/")]), "more labels");
        assert!(!is("request", &[("method", "GET"), ("status", "200")]), "another name");
        assert!(!is("requests", &[("status", "200"), ("method", "GET")]), "another order");
    }

    #[test]
    fn a_counter_is_found_by_its_parts_only_as_it_is_stored() {
        let store = Store::default();
        let parts = [("method", "GET"), ("status", "200")];
        let key = Key::from_parts("requests", parts.iter().map(|&(k, v)| Label::new(k, v)).collect::<Vec<_>>());
        let find_as = |name: &str, labels: &[(&'static str, &'static str)], kind, fit| {
            store.existing_by_parts(name, labels.iter().copied(), kind, fit)
        };
        let find = |name: &str, labels: &[(&'static str, &'static str)], kind| find_as(name, labels, kind, Fit::Exact);
        assert!(find("requests", &parts, CounterType::Increment).is_none(), "not created");
        let cell = store.cell(&key, CounterType::Increment);
        let found = find("requests", &parts, CounterType::Increment).expect("found by its parts");
        assert!(Arc::ptr_eq(&found, &cell));
        assert!(find("requests", &parts[..1], CounterType::Increment).is_none(), "fewer labels");
        assert!(find("requests", &[("method", "GET"), ("status", "201")], CounterType::Increment).is_none());
        assert!(find("request", &parts, CounterType::Increment).is_none(), "another name");
        assert!(find("requests", &parts, CounterType::LastValue).is_none(), "another type");
        assert!(find("requests", &[parts[1], parts[0]], CounterType::Increment).is_none(), "labels in another order");
        let sampled = Key::from_static_name("latency");
        let interval = store.cell(&sampled, CounterType::Interval);
        assert!(find("latency", &[], CounterType::Statistics).is_none(), "only its own type, exactly");
        let found = find_as("latency", &[], CounterType::Statistics, Fit::EitherSampled).expect("either sampled type");
        assert!(Arc::ptr_eq(&found, &interval));
    }
}
