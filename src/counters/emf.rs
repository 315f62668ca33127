//! [`EmfCounters`]: counters published as CloudWatch Embedded Metric Format log lines, for AWS Lambda and for
//! containers whose logs reach CloudWatch (the CloudWatch agent, FireLens, Fluent Bit).

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cached::{forward_counters_api, CachedCounters};
use crate::config::{ConfigParams, CountersOptions};
use crate::error::{ConfigError, Error};
use crate::exporter::DumpReport;
use crate::sink::emf::{Agent, AgentEndpoint, EmfLayout, EmfSink, Output};

/// The CloudWatch agent's default EMF endpoint.
pub const DEFAULT_AGENT_ENDPOINT: &str = "tcp://127.0.0.1:25888";

/// Documents buffered for the agent by default (a dump's worth for 10,000 counters, with room).
pub const DEFAULT_AGENT_BUFFER: usize = 10_000;

/// Counters published as CloudWatch Embedded Metric Format documents: one JSON document a line to standard
/// output (Lambda), any writer, or the CloudWatch agent over TCP or UDP. Per-period semantics as
/// `CloudWatchCounters`: each value goes out in exactly one dump; timings and histograms carry their
/// distribution (values and counts, with exact count, min, max and sum), so CloudWatch computes percentiles.
///
/// Where documents go, unless the builder says: `AWS_EMF_ENVIRONMENT` (`lambda` or `local`: standard output;
/// `agent`, `default` or `ec2`: the agent), else standard output on Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set),
/// else the agent at `AWS_EMF_AGENT_ENDPOINT` (default [`DEFAULT_AGENT_ENDPOINT`]). The namespace comes from the
/// builder, else `AWS_EMF_NAMESPACE`, else `aws-embedded-metrics` (as AWS's libraries).
///
/// ```
/// use cloudwatch_counters::{Counters, EmfCounters};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let counters = EmfCounters::builder().namespace("MyService").writer(std::io::sink()).build()?;
/// counters.increment("orders.created", 1);
/// counters.flush_blocking()?; // an invocation's end: one EMF document
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EmfCounters {
    counters: CachedCounters,
    sink: Arc<EmfSink>,
}

impl EmfCounters {
    /// A builder, with the environment's defaults.
    pub fn builder() -> EmfCountersBuilder {
        EmfCountersBuilder::default()
    }

    /// Starts the interval dumps; see [`CachedCounters::open`]. A Lambda handler usually calls
    /// [`flush`](Self::flush) at the end of each invocation instead.
    ///
    /// # Errors
    /// As [`CachedCounters::open`].
    pub async fn open(&self) -> Result<(), Error> {
        self.counters.open().await
    }

    /// [`open`](Self::open) for synchronous code.
    ///
    /// # Errors
    /// As [`CachedCounters::open`].
    pub fn open_blocking(&self) -> Result<(), Error> {
        self.counters.open_blocking()
    }

    /// Writes what happened since the last flush or dump (a dump). Cheap when nothing changed: no document.
    ///
    /// # Errors
    /// [`Error::Save`] when writing failed; the data is kept for the next flush.
    pub async fn flush(&self) -> Result<DumpReport, Error> {
        self.counters.dump().await
    }

    /// [`flush`](Self::flush) for synchronous code (a Lambda handler without a runtime of its own).
    ///
    /// # Errors
    /// As `flush`; also [`Error::BlockingInRuntime`] inside async code.
    pub fn flush_blocking(&self) -> Result<DumpReport, Error> {
        // The EMF sink writes (or buffers for the agent) without waiting on a runtime: the dump runs right here.
        self.counters.dump_here()
    }

    /// Stops the interval dumps, writes what is left, and waits (within `options.close_timeout`) for the agent
    /// to take the buffered documents.
    ///
    /// # Errors
    /// As [`CachedCounters::close`]; [`Error::Timeout`] when the agent did not take every buffered document in
    /// time (they stay buffered and go out if it comes back while the counters live).
    pub async fn close(&self) -> Result<DumpReport, Error> {
        let deadline = Instant::now() + self.counters.close_timeout();
        let report = self.counters.close().await?;
        self.drain_agent(deadline).await?;
        Ok(report)
    }

    /// [`close`](Self::close) for synchronous code.
    ///
    /// # Errors
    /// As [`close`](Self::close).
    pub fn close_blocking(&self) -> Result<DumpReport, Error> {
        let deadline = Instant::now() + self.counters.close_timeout();
        let report = self.counters.close_blocking()?;
        self.wait_for_agent(deadline)?;
        Ok(report)
    }

    /// Waits, until `deadline` (the close's, so that the whole close stays within `options.close_timeout`), for
    /// the agent to take the buffered documents.
    async fn drain_agent(&self, deadline: Instant) -> Result<(), Error> {
        let sink = Arc::clone(&self.sink);
        let left = deadline.saturating_duration_since(Instant::now());
        // Not run at all when the runtime is shutting down: no wait in vain.
        let drained = tokio::task::spawn_blocking(move || sink.agent().is_none_or(|a| a.drain(left))).await;
        self.drained(drained.map_err(|_| Error::RuntimeGone)?)
    }

    /// [`drain_agent`](Self::drain_agent) on this thread.
    fn wait_for_agent(&self, deadline: Instant) -> Result<(), Error> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.drained(self.sink.agent().is_none_or(|a| a.drain(left)))
    }

    fn drained(&self, drained: bool) -> Result<(), Error> {
        if drained {
            Ok(())
        } else {
            let timeout = self.counters.close_timeout();
            Err(Error::Timeout { what: "the CloudWatch agent taking the buffered EMF documents", timeout })
        }
    }

    /// Documents sent to the agent, dropped because its buffer was full, and waiting in the buffer (all zero
    /// when documents go to standard output or a writer).
    pub fn agent_counts(&self) -> (u64, u64, usize) {
        self.sink.agent().map_or((0, 0, 0), |a| (a.sent(), a.dropped(), a.buffered()))
    }
}

forward_counters_api!(EmfCounters);

impl fmt::Debug for EmfCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmfCounters").field("counters", &self.counters).field("sink", &self.sink).finish()
    }
}

/// Where the builder sends documents.
enum Destination {
    FromEnvironment,
    Stdout,
    Writer(Box<dyn Write + Send>),
    Agent(String),
}

/// A builder for [`EmfCounters`]; see there for the environment's defaults.
#[must_use = "a builder does nothing until `.build()`"]
pub struct EmfCountersBuilder {
    layout: EmfLayout,
    namespace: Option<String>,
    destination: Destination,
    options: CountersOptions,
    agent_buffer: usize,
    error: Option<ConfigError>,
}

impl Default for EmfCountersBuilder {
    fn default() -> Self {
        EmfCountersBuilder {
            layout: EmfLayout::default(),
            namespace: None,
            destination: Destination::FromEnvironment,
            options: CountersOptions::default(),
            agent_buffer: DEFAULT_AGENT_BUFFER,
            error: None,
        }
    }
}

impl fmt::Debug for EmfCountersBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmfCountersBuilder").field("layout", &self.layout).finish_non_exhaustive()
    }
}

impl EmfCountersBuilder {
    /// pip-style keys over what was set so far: `source` (the namespace), `connection.uri` (`stdout`, or the
    /// agent's `tcp://host:port` / `udp://host:port`), `dimensions.<name>`, `properties.<name>`,
    /// `options.rollups` or `rollups` (`service;service,route`; empty sets are left out), `options.high_resolution`
    /// and the counters' options.
    pub fn config(mut self, config: &ConfigParams) -> Self {
        if let Err(err) = self.options.apply_config(config) {
            self.error.get_or_insert(err);
        }
        if let Some(namespace) = config.get_string(&["source"]) {
            self.namespace = Some(namespace);
        }
        match config.get_string(&["connection.uri", "connections.uri"]) {
            Some(uri) if uri.eq_ignore_ascii_case("stdout") => self.destination = Destination::Stdout,
            Some(uri) => self.destination = Destination::Agent(uri),
            None => {}
        }
        for (name, value) in config.get_section("dimensions").iter() {
            self = self.dimension(name, value);
        }
        for (name, value) in config.get_section("properties").iter() {
            self = self.property(name, value);
        }
        if let Some(sets) = config.get_last_of(&["rollups", "options.rollups"]).map(|(_, v)| v) {
            for set in crate::config::rollup_sets(sets) {
                self = self.rollup_dimensions(set);
            }
        }
        if let Some(prefixes) = config.get_string(&["options.high_resolution"]) {
            self.layout
                .high_resolution
                .extend(prefixes.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned));
        }
        self
    }

    /// The CloudWatch namespace of every metric.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Documents go to standard output, one a line (Lambda).
    pub fn stdout(mut self) -> Self {
        self.destination = Destination::Stdout;
        self
    }

    /// Documents go to `writer`, one a line.
    pub fn writer(mut self, writer: impl Write + Send + 'static) -> Self {
        self.destination = Destination::Writer(Box::new(writer));
        self
    }

    /// Documents go to the CloudWatch agent at `endpoint` (`tcp://host:port` or `udp://host:port`).
    pub fn agent(mut self, endpoint: impl Into<String>) -> Self {
        self.destination = Destination::Agent(endpoint.into());
        self
    }

    /// At most this many documents wait for the agent (default [`DEFAULT_AGENT_BUFFER`]); more are dropped and
    /// counted.
    pub fn agent_buffer(mut self, documents: usize) -> Self {
        self.agent_buffer = documents;
        self
    }

    /// A dimension of every metric (a counter's own label of the same name wins). One CloudWatch would not take
    /// (not ASCII, blank, too long, a name starting with `:` or named `_aws`) is refused by [`build`](Self::build).
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        crate::config::set_pair(&mut self.layout.dimensions, &name.into(), &value.into());
        self
    }

    /// A property of every document: context that is logged with the metrics but is not a dimension.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        crate::config::set_pair(&mut self.layout.properties, &name.into(), &value.into());
        self
    }

    /// Also publishes each metric that has all these dimensions with only them (an entry of the directive's
    /// DimensionSets; an empty set gives the metric without dimensions).
    pub fn rollup_dimensions(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.layout.rollups.push(names.into_iter().map(Into::into).collect());
        self
    }

    /// Metrics whose names start with `prefix` are published at 1-second resolution.
    pub fn high_resolution_for(mut self, prefix: impl Into<String>) -> Self {
        self.layout.high_resolution.push(prefix.into());
        self
    }

    /// The interval, caps, percentiles and the rest of the counters' options.
    pub fn options(mut self, options: CountersOptions) -> Self {
        self.options = options;
        self
    }

    /// The counters, not yet open (a Lambda handler needs no `open`: it calls `flush` per invocation).
    ///
    /// # Errors
    /// [`ConfigError`] for an unusable namespace, agent endpoint, option or configuration key.
    pub fn build(self) -> Result<EmfCounters, ConfigError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        self.options.validate()?;
        for (name, value) in &self.layout.dimensions {
            crate::sink::emf::check_dimension(name, value).map_err(|_| {
                let expected = "names and values of 1-255 / 1-1024 ASCII characters, not blank (a name not `_aws`)";
                crate::config::invalid("dimensions", expected, &format!("{name}={value}"))
            })?;
        }
        let dimensions = self.layout.dimensions.len();
        if dimensions > crate::MAX_DIMENSIONS {
            return Err(crate::config::invalid("dimensions", "at most 30", &format!("{dimensions} dimensions")));
        }
        let namespace = self
            .namespace
            .or_else(|| std::env::var("AWS_EMF_NAMESPACE").ok().filter(|n| !n.trim().is_empty()))
            .unwrap_or_else(|| "aws-embedded-metrics".to_owned());
        crate::sink::limits::check_namespace(&namespace)
            .map_err(|expected| crate::config::invalid("source", expected, &namespace))?;
        let output = match self.destination {
            Destination::Stdout => Output::Stdout,
            Destination::Writer(writer) => Output::Writer(std::sync::Mutex::new(writer)),
            Destination::Agent(uri) => agent_output(&uri, self.agent_buffer)?,
            Destination::FromEnvironment => match environment_destination() {
                None => Output::Stdout,
                Some(uri) => agent_output(&uri, self.agent_buffer)?,
            },
        };
        let layout = EmfLayout { namespace, ..self.layout };
        let sink = Arc::new(EmfSink::new(layout, output));
        let counters = CachedCounters::with_shared_sink(Arc::clone(&sink) as Arc<dyn crate::sink::Sink>, self.options);
        // A Lambda handler flushes per invocation and never opens them: dropped, they still write what is left.
        counters.dump_in_place_on_drop();
        // Dropped without `close`, they still wait (within the close timeout) for the agent to take the rest.
        if sink.agent().is_some() {
            let agent_sink = Arc::clone(&sink);
            // Not again after a close that waited for it in vain, unless the agent took documents since.
            counters.drain_output_on_drop(move |timeout| {
                let wait = |agent: &Agent| if agent.stalled() { Duration::ZERO } else { timeout };
                agent_sink.agent().map_or(0, |agent| if agent.drain(wait(agent)) { 0 } else { agent.buffered() })
            });
        }
        // EMF adds no dimension of its own: a metric keeps labels of up to 30 names.
        counters.set_max_labels(crate::MAX_DIMENSIONS);
        Ok(EmfCounters { counters, sink })
    }
}

fn agent_output(uri: &str, buffer: usize) -> Result<Output, ConfigError> {
    let endpoint = AgentEndpoint::parse(uri)
        .map_err(|expected| crate::config::invalid("connection.uri", expected, &crate::error::redact_userinfo(uri)))?;
    Agent::start(endpoint, buffer)
        .map(Output::Agent)
        .map_err(|e| crate::config::invalid("connection.uri", "an agent endpoint a thread can send to", &e.to_string()))
}

/// The agent endpoint the environment asks for, or `None` for standard output.
fn environment_destination() -> Option<String> {
    let agent = || std::env::var("AWS_EMF_AGENT_ENDPOINT").ok().filter(|e| !e.trim().is_empty());
    match std::env::var("AWS_EMF_ENVIRONMENT").map(|e| e.trim().to_ascii_lowercase()) {
        Ok(e) if e == "lambda" || e == "local" => None,
        Ok(e) if e == "agent" || e == "default" || e == "ec2" || e == "ecs" => {
            Some(agent().unwrap_or_else(|| DEFAULT_AGENT_ENDPOINT.to_owned()))
        }
        _ if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() => None,
        _ => Some(agent().unwrap_or_else(|| DEFAULT_AGENT_ENDPOINT.to_owned())),
    }
}
