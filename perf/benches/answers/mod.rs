//! What the benches' fake CloudWatch answers: success, as CloudWatch's rpc-v2-cbor protocol does.

/// A successful PutMetricData response (an empty CBOR map).
pub fn success() -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("content-type", "application/cbor")
        .body(vec![0xa0])
        .expect("a valid response")
}
