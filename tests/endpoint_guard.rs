//! Plain http only to this machine, whatever configured the endpoint: the settings, `AWS_ENDPOINT_URL_CLOUDWATCH`,
//! a profile's `services` section, or a client of the user's own (checked on the final request URI, before
//! anything is sent). A malformed endpoint is an error at `open()`. One test, because the environment is
//! process-wide.

mod common;

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
use cloudwatch_counters::{CloudWatchCounters, Counters, CountersOptions, Error};
use common::http::{cbor_response, infallible_client_fn};

fn from_environment() -> CloudWatchCounters {
    CloudWatchCounters::builder()
        .namespace("guard")
        .region("us-east-1")
        .credentials("test", "test")
        .options(CountersOptions::default().interval(std::time::Duration::from_secs(3600)))
        .build()
        .expect("valid settings")
}

#[tokio::test]
async fn the_endpoint_the_sdk_will_use_is_checked_however_it_was_configured() {
    let home = std::env::temp_dir().join(format!("cwc-guard-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    for var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_PROFILE", "AWS_CONFIG_FILE"] {
        std::env::remove_var(var);
    }
    // An empty config file, so that no profile of the machine's user takes part.
    std::env::set_var("AWS_CONFIG_FILE", home.join("none"));

    // CloudWatch's own environment variable.
    std::env::set_var("AWS_ENDPOINT_URL_CLOUDWATCH", "http://evil.example:4591");
    let err = from_environment().open().await.unwrap_err();
    assert!(matches!(&err, Error::InsecureEndpoint { host } if host == "evil.example"), "{err}");
    // A malformed one (no scheme) fails at open, instead of failing every dump.
    std::env::set_var("AWS_ENDPOINT_URL_CLOUDWATCH", "127.0.0.1:4566");
    let err = from_environment().open().await.unwrap_err();
    assert!(matches!(&err, Error::InvalidEndpoint { .. }), "{err}");
    std::env::remove_var("AWS_ENDPOINT_URL_CLOUDWATCH");

    // A profile's services section.
    let config = home.join("config");
    std::fs::write(
        &config,
        "[profile guarded]\nservices = evil\n\n[services evil]\ncloudwatch =\n  endpoint_url = http://10.1.2.3:4566\n",
    )
    .unwrap();
    std::env::set_var("AWS_CONFIG_FILE", &config);
    std::env::set_var("AWS_PROFILE", "guarded");
    let err = from_environment().open().await.unwrap_err();
    assert!(matches!(&err, Error::InsecureEndpoint { host } if host == "10.1.2.3"), "{err}");
    std::env::remove_var("AWS_PROFILE");
    std::env::set_var("AWS_CONFIG_FILE", home.join("none"));

    // A loopback endpoint from the environment is fine.
    std::env::set_var("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:1");
    let local = from_environment();
    local.open().await.expect("plain http to this machine is allowed");
    local.close().await.ok();
    std::env::remove_var("AWS_ENDPOINT_URL_CLOUDWATCH");

    // A client of the user's own, pointed at a remote plain-http endpoint: refused on the final request URI,
    // before anything is sent (the fake HTTP client records every request it is handed).
    let sent = Arc::new(Mutex::new(0usize));
    let seen = Arc::clone(&sent);
    let http = infallible_client_fn(move |_| {
        *seen.lock().unwrap() += 1;
        cbor_response(None)
    });
    let client = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url("http://monitoring.example.com")
            .http_client(http)
            .build(),
    );
    let counters = CloudWatchCounters::builder().namespace("guard").client(client).build().expect("valid settings");
    counters.open().await.expect("a ready client is used as it is");
    counters.increment("calls", 1);
    let err = counters.dump().await.unwrap_err();
    assert!(err.to_string().contains("refusing plain http to monitoring.example.com"), "{err}");
    assert!(matches!(&err, Error::Save(e) if !e.is_ambiguous()), "nothing was sent, so it is kept: {err}");
    assert_eq!(*sent.lock().unwrap(), 0, "nothing left the machine");
    assert_eq!(counters.counters().get_all()[0].count, Some(1));
    let _ = std::fs::remove_dir_all(&home);
}
