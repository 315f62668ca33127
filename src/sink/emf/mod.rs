//! [`EmfSink`]: each dump as CloudWatch Embedded Metric Format documents, one JSON document a line, to standard
//! output (Lambda), any writer, or the CloudWatch agent over TCP or UDP.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::error::SaveError;
use crate::model::Counter;
use crate::sink::limits::SkipCounts;
use crate::sink::{SaveFuture, Sink, SinkCounts, SinkView};
use crate::warn::{shown_name, WarnEvery};

pub(crate) mod agent;
mod document;

pub(crate) use agent::{Agent, AgentEndpoint};
pub(crate) use document::check_dimension;
use document::{documents, DocumentContext};

/// What every document of an EMF sink shares.
#[derive(Debug, Clone, Default)]
pub(crate) struct EmfLayout {
    pub(crate) namespace: String,
    pub(crate) dimensions: Vec<(String, String)>,
    pub(crate) rollups: Vec<Vec<String>>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) high_resolution: Vec<String>,
}

/// Where documents go.
pub(crate) enum Output {
    /// Standard output, a document a line (Lambda sends it to CloudWatch Logs).
    Stdout,
    /// Any writer, a document a line.
    Writer(Mutex<Box<dyn Write + Send>>),
    /// The CloudWatch agent (or any EMF listener) over TCP or UDP, from a bounded buffer.
    Agent(Agent),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stdout => f.write_str("Stdout"),
            Output::Writer(_) => f.write_str("Writer"),
            Output::Agent(agent) => write!(f, "Agent({agent:?})"),
        }
    }
}

/// Writes dumps as EMF documents (see the module docs).
#[derive(Debug)]
pub(crate) struct EmfSink {
    layout: EmfLayout,
    output: Output,
    documents_sent: AtomicU64,
    datums_sent: AtomicU64,
    writes_failed: AtomicU64,
    dimensions_deduplicated: AtomicU64,
    skipped: SkipCounts,
    warn_properties: WarnEvery,
    /// A failed write left a line unfinished on stdout or the writer: the next write ends it first, so that the
    /// next document starts a line of its own (read and written under the output's lock).
    line_open: AtomicBool,
}

impl EmfSink {
    pub(crate) fn new(layout: EmfLayout, output: Output) -> EmfSink {
        EmfSink {
            layout,
            output,
            documents_sent: AtomicU64::new(0),
            datums_sent: AtomicU64::new(0),
            writes_failed: AtomicU64::new(0),
            dimensions_deduplicated: AtomicU64::new(0),
            skipped: SkipCounts::default(),
            warn_properties: WarnEvery::default(),
            line_open: AtomicBool::new(false),
        }
    }

    /// The agent output, if that is where documents go.
    pub(crate) fn agent(&self) -> Option<&Agent> {
        match &self.output {
            Output::Agent(agent) => Some(agent),
            _ => None,
        }
    }

    fn write(&self, counters: &[Counter]) -> Result<(), SaveError> {
        let layout = &self.layout;
        let ctx = DocumentContext {
            namespace: &layout.namespace,
            dimensions: &layout.dimensions,
            rollups: &layout.rollups,
            properties: &layout.properties,
            high_resolution: &layout.high_resolution,
            max_bytes: match self.agent() {
                Some(agent) if agent.is_udp() => document::MAX_DATAGRAM_BYTES,
                _ => document::MAX_DOCUMENT_BYTES,
            },
            now: SystemTime::now(),
        };
        let mut built = documents(counters, &ctx);
        self.dimensions_deduplicated.fetch_add(built.deduplicated, Relaxed);
        for (i, reason) in built.skipped {
            self.skipped.skip(reason, counters[i].name());
        }
        if let Some(&first) = built.without_properties.first() {
            if self.warn_properties.ready() {
                tracing::warn!(
                    target: "cloudwatch_counters",
                    metrics = built.without_properties.len(),
                    first = %shown_name(counters[first].name()),
                    max_bytes = ctx.max_bytes,
                    "EMF documents written without their properties: with them, the document of a single metric is \
                     larger than the destination takes"
                );
            }
        }
        let mut written = 0;
        // Documents dropped because the agent's buffer was full are counted there (`documents_dropped`), not here.
        let mut dropped = (0, 0);
        let result = match &self.output {
            Output::Stdout => {
                write_lines(&mut std::io::stdout().lock(), &built.documents, &mut written, &self.line_open)
            }
            Output::Writer(writer) => {
                let mut writer = writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                write_lines(&mut **writer, &built.documents, &mut written, &self.line_open)
            }
            Output::Agent(agent) => {
                // Handed over, not copied: only each document's counters are needed after this.
                for (document, sources) in &mut built.documents {
                    if !agent.send(std::mem::take(document)) {
                        dropped = (dropped.0 + 1, dropped.1 + sources.len() as u64);
                    }
                    written += 1;
                }
                Ok(())
            }
        };
        let sent = &built.documents[..written];
        self.documents_sent.fetch_add(sent.len() as u64 - dropped.0, Relaxed);
        let datums: u64 = sent.iter().map(|(_, sources)| sources.len() as u64).sum();
        self.datums_sent.fetch_add(datums - dropped.1, Relaxed);
        result.map_err(|err| {
            self.writes_failed.fetch_add(1, Relaxed);
            // What was written is out; the rest goes back into the counters for the next dump.
            let failed = built.documents[written..].iter().flat_map(|(_, sources)| sources.iter().copied()).collect();
            SaveError::with_source("writing EMF documents failed", err).partial(failed)
        })
    }
}

/// Writes each document and a newline, counting the documents written; flushes at the end. A write that fails
/// part way leaves its line open (`line_open`): the next write ends it before its first document. A document
/// cut short is not written (an unfinished document is no JSON: its counters are sent again); one whose newline
/// alone failed is (it is whole, and its line is ended by the next write).
fn write_lines(
    out: &mut dyn Write,
    documents: &[(String, Vec<usize>)],
    written: &mut usize,
    line_open: &AtomicBool,
) -> std::io::Result<()> {
    if line_open.load(Relaxed) {
        write_counting(out, b"\n", line_open)?;
        line_open.store(false, Relaxed);
    }
    for (document, _) in documents {
        write_counting(out, document.as_bytes(), line_open)?;
        *written += 1;
        write_counting(out, b"\n", line_open)?;
        line_open.store(false, Relaxed);
    }
    out.flush()
}

/// `write_all`, setting `line_open` as soon as a byte of `bytes` went out.
fn write_counting(out: &mut dyn Write, mut bytes: &[u8], line_open: &AtomicBool) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                line_open.store(true, Relaxed);
                bytes = &bytes[n..];
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

impl Sink for EmfSink {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        Box::pin(async move { self.write(counters) })
    }

    fn view(&self) -> SinkView {
        SinkView::Period
    }

    fn percentiles(&self) -> bool {
        true
    }

    fn counts(&self) -> SinkCounts {
        let mut counts = SinkCounts {
            datums_sent: self.datums_sent.load(Relaxed),
            requests_sent: self.documents_sent.load(Relaxed),
            requests_failed: self.writes_failed.load(Relaxed),
            dimensions_deduplicated: self.dimensions_deduplicated.load(Relaxed),
            ..SinkCounts::default()
        };
        counts.skipped = self.skipped.to_array();
        if let Some(agent) = self.agent() {
            counts.documents_dropped = agent.dropped();
        }
        counts
    }
}
