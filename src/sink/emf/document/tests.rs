use super::*;
use crate::model::distribution::bucket_index;
use crate::model::Distribution;

fn ctx<'a>(dimensions: &'a [(String, String)], rollups: &'a [Vec<String>]) -> DocumentContext<'a> {
    DocumentContext {
        namespace: "Shop",
        dimensions,
        rollups,
        properties: &[],
        high_resolution: &[],
        max_bytes: MAX_DOCUMENT_BYTES,
        now: UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
    }
}

fn increment(name: &str, count: i64, dims: &[(&str, &str)]) -> Counter {
    let mut c = Counter::new(name, CounterType::Increment);
    c.count = Some(count);
    c.set_dimensions(dims.iter().copied());
    c
}

#[test]
fn counters_with_the_same_dimensions_share_a_document() {
    let counters = [
        increment("orders", 3, &[("route", "/pay")]),
        increment("errors", 1, &[("route", "/pay")]),
        increment("orders", 5, &[("route", "/list")]),
    ];
    let built = documents(&counters, &ctx(&[], &[]));
    assert!(built.skipped.is_empty());
    let docs: Vec<&str> = built.documents.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        docs,
        [
            r#"{"_aws":{"Timestamp":1700000000123,"CloudWatchMetrics":[{"Namespace":"Shop","Dimensions":[["route"]],"Metrics":[{"Name":"orders","Unit":"Count"}]}]},"route":"/list","orders":5}"#,
            r#"{"_aws":{"Timestamp":1700000000123,"CloudWatchMetrics":[{"Namespace":"Shop","Dimensions":[["route"]],"Metrics":[{"Name":"orders","Unit":"Count"},{"Name":"errors","Unit":"Count"}]}]},"route":"/pay","orders":3,"errors":1}"#,
        ]
    );
    assert_eq!(built.documents[1].1, [0, 1], "each document names its counters");
}

#[test]
fn a_distribution_keeps_its_exact_statistics_and_at_most_100_values() {
    let mut c = Counter::new("latency", CounterType::Interval);
    let samples: Vec<f64> = (1..=1000).map(f64::from).collect();
    c.distribution = Some(Distribution::from_parts(0, 0, samples.iter().map(|&v| (bucket_index(v), 1)).collect()));
    (c.count, c.sum, c.min, c.max) = (Some(1000), Some(500_500.0), Some(1.0), Some(1000.0));
    let built = documents(&[c], &ctx(&[], &[]));
    let doc = &built.documents[0].0;
    assert!(doc.contains(r#""Unit":"Milliseconds""#));
    assert!(doc.contains(r#""Max":1000,"Min":1,"Count":1000,"Sum":500500}"#), "{doc}");
    let values = doc.split(r#""Values":["#).nth(1).and_then(|v| v.split(']').next()).expect("values");
    assert!(values.split(',').count() <= MAX_VALUES);
}

#[test]
fn limits_split_documents_and_skip_what_cannot_be_sent() {
    let many: Vec<Counter> = (0..250).map(|i| increment(&format!("m{i}"), i, &[])).collect();
    let built = documents(&many, &ctx(&[], &[]));
    assert_eq!(built.documents.len(), 3, "100 metrics a document");
    assert_eq!(built.documents.iter().map(|(_, s)| s.len()).sum::<usize>(), 250);

    let long_value = "v".repeat(1025);
    let dims31: Vec<(String, String)> = (0..31).map(|i| (format!("d{i}"), "x".to_owned())).collect();
    let mut too_many = increment("m", 1, &[]);
    too_many.set_dimensions(dims31);
    let bad = [
        increment("", 1, &[]),
        increment("_aws", 1, &[]),
        increment("m", 1, &[(":k", "v")]),
        increment("m", 1, &[("k", &long_value)]),
        increment("same", 1, &[("same", "v")]),
        too_many,
    ];
    let skipped: Vec<SkipReason> = documents(&bad, &ctx(&[], &[])).skipped.into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        skipped,
        [
            SkipReason::MetricName,
            SkipReason::MetricName,
            SkipReason::DimensionName,
            SkipReason::DimensionValue,
            SkipReason::DimensionName,
            SkipReason::TooManyDimensions
        ]
    );
}

#[test]
fn default_dimensions_rollups_properties_and_escaping() {
    let defaults = [("service".to_owned(), "shop".to_owned())];
    let rollups = [vec!["service".to_owned()], vec!["missing".to_owned()]];
    let mut c = increment("q\"uote", 2, &[("route", "/a\\b")]);
    c.properties = vec![("request_id".into(), "r-1".into()), ("route".into(), "ignored: a dimension".into())];
    let mut ctx = ctx(&defaults, &rollups);
    let fleet = [("version".to_owned(), "1.2".to_owned())];
    ctx.properties = &fleet;
    let doc = &documents(&[c], &ctx).documents[0].0;
    assert!(doc.contains(r#""Dimensions":[["service","route"],["service"]]"#), "{doc}");
    assert!(
        doc.contains(r#""service":"shop","route":"/a\\b","version":"1.2","request_id":"r-1","q\"uote":2}"#),
        "{doc}"
    );
}

#[test]
fn a_document_over_the_size_limit_is_split() {
    let counters: Vec<Counter> = (0..6).map(|i| increment(&format!("metric_with_a_long_name_{i}"), i, &[])).collect();
    let mut small = ctx(&[], &[]);
    small.max_bytes = 300;
    let built = documents(&counters, &small);
    assert!(built.documents.len() > 1);
    assert!(built.documents.iter().all(|(d, _)| d.len() <= 300), "every document within the limit");
    assert_eq!(built.documents.iter().map(|(_, s)| s.len()).sum::<usize>(), 6, "every counter once");
}

#[test]
fn a_document_names_a_metric_once_when_two_counters_merge_to_the_same_dimensions() {
    let defaults = [("service".to_owned(), "checkout".to_owned())];
    let counters = [
        increment("calls", 1, &[]),
        // The same value as the default dimension: the same dimensions once merged.
        increment("calls", 2, &[("service", "checkout")]),
        // A label name given twice: the last one wins, the same dimensions again.
        increment("calls", 4, &[("service", "other"), ("service", "checkout")]),
        increment("errors", 8, &[]),
    ];
    let built = documents(&counters, &ctx(&defaults, &[]));
    assert!(built.skipped.is_empty());
    let mut sources: Vec<usize> = Vec::new();
    let mut calls = Vec::new();
    for (doc, indices) in &built.documents {
        assert!(doc.matches(r#""calls":"#).count() <= 1, "a name once per document: {doc}");
        assert!(doc.matches(r#"{"Name":"calls""#).count() <= 1, "{doc}");
        if let Some(value) = doc.split(r#""calls":"#).nth(1) {
            calls.push(value.trim_end_matches('}').split(',').next().expect("a value").to_owned());
        }
        sources.extend(indices);
    }
    calls.sort();
    assert_eq!(calls, ["1", "2", "4"], "each counter's value in some document");
    sources.sort_unstable();
    assert_eq!(sources, [0, 1, 2, 3], "every counter in exactly one document");
    assert_eq!(built.documents.len(), 3, "the second and third `calls` each start a document of their own");
}

#[test]
fn a_metric_too_large_with_its_properties_goes_without_them_and_one_too_large_alone_is_skipped() {
    let mut udp = ctx(&[], &[]);
    udp.max_bytes = MAX_DATAGRAM_BYTES;
    let mut long = increment("uploads", 3, &[("route", "/u")]);
    long.properties = vec![("blob".into(), "x".repeat(70_000))];
    let counters = [long, increment("downloads", 1, &[("route", "/u")])];
    let built = documents(&counters, &udp);
    assert_eq!((built.skipped.as_slice(), built.without_properties.as_slice()), (&[][..], &[0][..]));
    assert!(built.documents.iter().all(|(d, _)| d.len() <= MAX_DATAGRAM_BYTES && !d.contains("blob")));
    let all: String = built.documents.iter().map(|(d, _)| d.as_str()).collect();
    assert!(all.contains(r#""uploads":3"#) && all.contains(r#""downloads":1"#), "{all}");

    let mut tiny = ctx(&[], &[]);
    tiny.max_bytes = 150;
    let built = documents(&[increment("uploads", 3, &[("route", "/u")])], &tiny);
    assert!(built.documents.is_empty());
    assert_eq!(built.skipped, [(0, SkipReason::TooLarge)]);
}

#[test]
fn an_increment_with_a_unit_cloudwatch_lacks_has_none_and_values_out_of_range_are_skipped() {
    let mut pause = increment("gc.pause", 3, &[]);
    pause.unit = Some(metrics::Unit::Nanoseconds);
    let mut bytes = increment("sent", 4, &[]);
    bytes.unit = Some(metrics::Unit::Bytes);
    let mut huge = increment("huge", 0, &[]);
    huge.sum = Some(4e108 * 1e10); // past 2^360: CloudWatch refuses it
    let mut level = Counter::new("level", CounterType::LastValue);
    level.last = Some(-1e300);
    let built = documents(&[pause, bytes, huge, level], &ctx(&[], &[]));
    let doc = &built.documents[0].0;
    assert!(doc.contains(r#"{"Name":"gc.pause","Unit":"None"}"#), "{doc}");
    assert!(doc.contains(r#"{"Name":"sent","Unit":"Bytes"}"#), "{doc}");
    assert!(!doc.contains("huge") && !doc.contains("level"), "{doc}");
    assert_eq!(built.skipped, [(2, SkipReason::Value), (3, SkipReason::Value)]);
}

#[test]
fn counters_whose_properties_disagree_go_into_documents_of_their_own() {
    let with = |name: &str, request: &str| {
        let mut c = increment(name, 1, &[("route", "/pay")]);
        c.properties = vec![("request_id".to_owned(), request.to_owned())];
        c
    };
    let counters = [with("a", "r-1"), with("b", "r-2"), with("c", "r-1"), increment("d", 1, &[("route", "/pay")])];
    let built = documents(&counters, &ctx(&[], &[]));
    let docs: Vec<(&str, &[usize])> = built.documents.iter().map(|(d, s)| (d.as_str(), s.as_slice())).collect();
    // Grouped by their properties (none first), each group a document: no metric is read with properties of
    // another's.
    assert_eq!(docs.len(), 3, "{docs:?}");
    assert_eq!(docs[0].1, [3], "d has no request_id: alone, or it would be read as r-1's");
    assert!(!docs[0].0.contains("request_id"), "{}", docs[0].0);
    assert_eq!(docs[1].1, [0, 2], "a and c, both r-1");
    assert!(docs[1].0.contains(r#""request_id":"r-1""#));
    assert_eq!(docs[2].1, [1], "b, r-2");
    assert!(docs[2].0.contains(r#""request_id":"r-2""#));
    // The same properties in another order, and none at all, share documents.
    let mut e = with("e", "r-1");
    e.properties.insert(0, ("tenant".to_owned(), "acme".to_owned()));
    let mut f = with("f", "r-1");
    f.properties.push(("tenant".to_owned(), "acme".to_owned()));
    let plain = [increment("g", 1, &[("route", "/pay")]), increment("h", 1, &[("route", "/pay")])];
    let counters = [e, f, plain[0].clone(), plain[1].clone()];
    let built = documents(&counters, &ctx(&[], &[]));
    let sources: Vec<&[usize]> = built.documents.iter().map(|(_, s)| s.as_slice()).collect();
    assert_eq!(sources, [&[2, 3][..], &[0, 1][..]], "those without properties first");
}

#[test]
fn numbers_are_written_whole_without_a_fraction_and_read_back_exactly() {
    let whole = [0.0, -0.0, 1.0, -7.0, 42.0, 999_999_999_999_999.0, -999_999_999_999_999.0];
    let other = [0.5, -2.25, 1e15, 1e300, -1e-300, 4_503_599_627_370_497.0, 0.1 + 0.2, f64::MIN_POSITIVE];
    for value in whole.into_iter().chain(other) {
        let mut out = String::new();
        push_number(&mut out, value);
        assert_eq!(out.parse::<f64>().ok(), Some(value), "{value:?} written as {out}");
        let is_whole = whole.contains(&value);
        assert_eq!(!out.contains(['.', 'e', 'E']), is_whole, "{value:?} written as {out}");
    }
}

#[test]
fn dimensions_checked_once_for_their_group_skip_each_of_its_counters_for_the_reason_it_meets_first() {
    let long_value = "v".repeat(1025);
    let bad = [("a", "1"), ("b", long_value.as_str()), ("c", "3")];
    let counters = [
        increment("ok", 1, &[("a", "1")]),
        increment("x", 1, &bad),
        increment("a", 1, &bad),
        increment("b", 1, &bad),
        increment("c", 1, &bad),
        increment("y", 2, &bad),
        increment("a", 1, &[("a", "1")]),
        increment("ok2", 4, &[("a", "1")]),
        increment("z", 1, &[("d", ""), ("e", "5")]),
        increment("e", 1, &[("d", ""), ("e", "5")]),
    ];
    let built = documents(&counters, &ctx(&[], &[]));
    assert_eq!(
        built.skipped,
        [
            (1, SkipReason::DimensionValue),
            // Its name is a dimension before the one that cannot be sent: that is what a counter meets first.
            (2, SkipReason::DimensionName),
            // The dimension of its name is the one that cannot be sent: its name is checked first.
            (3, SkipReason::DimensionName),
            // The dimension of its name comes after the one that cannot be sent.
            (4, SkipReason::DimensionValue),
            (5, SkipReason::DimensionValue),
            (6, SkipReason::DimensionName),
            (8, SkipReason::DimensionValue),
            (9, SkipReason::DimensionValue),
        ]
    );
    // The group every counter of which was skipped writes no document; the other holds the two that are sent.
    let sources: Vec<&[usize]> = built.documents.iter().map(|(_, s)| s.as_slice()).collect();
    assert_eq!(sources, [&[0, 7][..]]);
}
