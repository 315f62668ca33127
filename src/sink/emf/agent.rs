//! The CloudWatch agent output: documents go into a bounded buffer and a thread of their own sends them, a
//! document and a newline at a time, over one TCP connection (reconnecting) or as one UDP datagram each.
//!
//! A dump never waits on the network: a document that finds the buffer full is dropped and counted. A document
//! whose send fails stays first in the buffer and is sent again once the agent is back (for TCP, a connection
//! the agent closed is noticed before a document is written to it), so an agent over TCP that goes away and
//! comes back loses nothing that fit in the buffer. Over UDP a datagram to an agent that is down leaves without
//! an error (only a later send may see the refusal): it is lost, though counted as sent. Failures are warned
//! about at most once a minute, each kind (no connection; a send that failed).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::warn::WarnEvery;

/// Where the agent listens: `tcp://host:port` or `udp://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentEndpoint {
    Tcp(String),
    Udp(String),
}

impl AgentEndpoint {
    /// Parses `tcp://host:port` or `udp://host:port`.
    pub(crate) fn parse(url: &str) -> Result<AgentEndpoint, &'static str> {
        let (scheme, address) = url.trim().split_once("://").ok_or("tcp://host:port or udp://host:port")?;
        if address.contains('@') {
            // An agent takes no credentials: a user or password here is a mistake, and is never echoed.
            return Err("tcp://host:port or udp://host:port, with no user or password");
        }
        if address.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err()) {
            return Err("tcp://host:port or udp://host:port, with a host and a port number");
        }
        match scheme.to_ascii_lowercase().as_str() {
            "tcp" => Ok(AgentEndpoint::Tcp(address.to_owned())),
            "udp" => Ok(AgentEndpoint::Udp(address.to_owned())),
            _ => Err("tcp://host:port or udp://host:port"),
        }
    }
}

/// The buffer the sink fills and the sending thread empties.
#[derive(Debug)]
struct Queue {
    documents: Mutex<VecDeque<String>>,
    changed: Condvar,
    capacity: usize,
    /// Documents dropped because the buffer was full.
    dropped: AtomicU64,
    /// Documents the agent took.
    sent: AtomicU64,
    stop: AtomicBool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<String>> {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The agent output (see the module docs).
#[derive(Debug)]
pub(crate) struct Agent {
    udp: bool,
    queue: Arc<Queue>,
    /// What [`Agent::sent`] was when a [`drain`](Agent::drain) last gave up with documents still waiting, plus
    /// one; 0 before any did.
    stalled_at: AtomicU64,
}

impl Agent {
    /// Starts the sending thread for `endpoint`, buffering at most `capacity` documents.
    pub(crate) fn start(endpoint: AgentEndpoint, capacity: usize) -> std::io::Result<Agent> {
        let queue = Arc::new(Queue {
            documents: Mutex::new(VecDeque::new()),
            changed: Condvar::new(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let (thread_queue, thread_endpoint) = (Arc::clone(&queue), endpoint.clone());
        std::thread::Builder::new()
            .name("cloudwatch-counters-emf-agent".into())
            .spawn(move || run(&thread_queue, &thread_endpoint))?;
        Ok(Agent { udp: matches!(endpoint, AgentEndpoint::Udp(_)), queue, stalled_at: AtomicU64::new(0) })
    }

    /// Buffers `document` for the agent; drops and counts it when the buffer is full. Never waits. Whether it
    /// was buffered.
    pub(crate) fn send(&self, document: String) -> bool {
        let mut documents = self.queue.lock();
        if documents.len() >= self.queue.capacity {
            self.queue.dropped.fetch_add(1, Relaxed);
            return false;
        }
        documents.push_back(document);
        drop(documents);
        self.queue.changed.notify_all();
        true
    }

    /// Documents dropped because the buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.queue.dropped.load(Relaxed)
    }

    /// Documents the agent took.
    pub(crate) fn sent(&self) -> u64 {
        self.queue.sent.load(Relaxed)
    }

    /// Documents waiting to be sent.
    pub(crate) fn buffered(&self) -> usize {
        self.queue.lock().len()
    }

    /// Waits until every buffered document was sent, at most `timeout`; whether they were.
    pub(crate) fn drain(&self, timeout: Duration) -> bool {
        // None: no deadline (a timeout past what an `Instant` holds).
        let deadline = Instant::now().checked_add(timeout);
        let mut documents = self.queue.lock();
        while !documents.is_empty() {
            let left = deadline.map_or(Some(Duration::from_secs(3600)), |d| d.checked_duration_since(Instant::now()));
            let Some(left) = left else {
                self.stalled_at.store(self.sent() + 1, Relaxed);
                return false;
            };
            documents = self.queue.changed.wait_timeout(documents, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    /// Whether the agent took no document since a [`drain`](Agent::drain) gave up waiting for it: waiting for it
    /// again would most likely be in vain too.
    pub(crate) fn stalled(&self) -> bool {
        self.stalled_at.load(Relaxed) == self.sent() + 1
    }

    /// Whether documents go out as UDP datagrams (so each must fit in one).
    pub(crate) fn is_udp(&self) -> bool {
        self.udp
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Set under the lock: the sending thread checks it under the lock before it waits, so the wake-up below
        // cannot come between its check and its wait (and be lost, leaving it waiting for good).
        let documents = self.queue.lock();
        self.queue.stop.store(true, Relaxed);
        drop(documents);
        self.queue.changed.notify_all();
    }
}

/// A connection to the agent.
enum Connection {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

/// Connects to the first of the endpoint's addresses that takes it (`localhost` may resolve to `::1` first
/// while the agent listens on IPv4 only), a UDP socket bound in the address's own family.
fn connect(endpoint: &AgentEndpoint) -> std::io::Result<Connection> {
    let (AgentEndpoint::Tcp(address) | AgentEndpoint::Udp(address)) = endpoint;
    let udp = matches!(endpoint, AgentEndpoint::Udp(_));
    let mut targets: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
    if udp {
        // A UDP connect always succeeds, so the first address is the one used: IPv4 first, as a socket bound to
        // 0.0.0.0 did (an agent at `localhost` listens on 127.0.0.1 far more often than on ::1).
        targets.sort_by_key(SocketAddr::is_ipv6);
    }
    connect_any(udp, address, targets.into_iter())
}

/// [`connect`] to the first of `targets` (the addresses `address` resolved to) that takes it.
fn connect_any(udp: bool, address: &str, targets: impl Iterator<Item = SocketAddr>) -> std::io::Result<Connection> {
    let mut last = std::io::Error::other(format!("{address} resolves to no address"));
    for target in targets {
        let connected = if udp {
            let any: SocketAddr =
                if target.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
            UdpSocket::bind(any).and_then(|socket| {
                socket.connect(target)?;
                Ok(Connection::Udp(socket))
            })
        } else {
            TcpStream::connect_timeout(&target, Duration::from_secs(2)).and_then(|stream| {
                stream.set_write_timeout(Some(Duration::from_secs(5)))?;
                Ok(Connection::Tcp(stream))
            })
        };
        match connected {
            Ok(connection) => return Ok(connection),
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Whether a TCP connection was closed by the agent (a read would give end of file or an error).
fn closed(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let gone = match (&*stream).read(&mut probe) {
        Ok(0) => true,
        Ok(_) => false, // the agent sends nothing; ignore it
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    gone || stream.set_nonblocking(false).is_err()
}

fn send_one(connection: &mut Connection, document: &str) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(document.len() + 1);
    line.extend_from_slice(document.as_bytes());
    line.push(b'\n');
    match connection {
        Connection::Tcp(stream) => {
            if closed(stream) {
                return Err(std::io::Error::new(ErrorKind::ConnectionReset, "the agent closed the connection"));
            }
            stream.write_all(&line)
        }
        Connection::Udp(socket) => socket.send(&line).map(|_| ()),
    }
}

/// The sending thread: the first buffered document until it is sent, reconnecting with a growing pause (up to
/// a second) while the agent is away.
fn run(queue: &Queue, endpoint: &AgentEndpoint) {
    let mut connection: Option<Connection> = None;
    let mut pause = Duration::from_millis(10);
    let (unreachable, failing) = (WarnEvery::default(), WarnEvery::default());
    loop {
        let document = {
            let mut documents = queue.lock();
            loop {
                if queue.stop.load(Relaxed) && documents.is_empty() {
                    return;
                }
                if let Some(first) = documents.front() {
                    break first.clone();
                }
                documents = queue.changed.wait(documents).unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A send that failed, on the connection it had or on a new one; or no connection (`connecting`).
        let (result, connecting) = match connection.as_mut() {
            Some(c) => (send_one(c, &document), false),
            None => match connect(endpoint) {
                Ok(mut c) => {
                    let sent = send_one(&mut c, &document);
                    connection = Some(c);
                    (sent, false)
                }
                Err(err) => (Err(err), true),
            },
        };
        match &result {
            Err(err) if connecting && unreachable.ready() => tracing::warn!(
                target: "cloudwatch_counters",
                agent = ?endpoint,
                error = %err,
                "the CloudWatch agent cannot be reached: documents wait in the buffer, and what does not fit is \
                 dropped and counted (documents_dropped)"
            ),
            Err(err) if !connecting && failing.ready() => tracing::warn!(
                target: "cloudwatch_counters",
                agent = ?endpoint,
                error = %err,
                "sending a document to the CloudWatch agent failed: it stays first in the buffer and is sent again \
                 (over a new connection for TCP)"
            ),
            _ => {}
        }
        if result.is_ok() {
            queue.lock().pop_front();
            queue.sent.fetch_add(1, Relaxed);
            queue.changed.notify_all();
            pause = Duration::from_millis(10);
        } else {
            connection = None;
            if queue.stop.load(Relaxed) {
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_is_tried_and_udp_binds_in_the_targets_family() {
        // TCP: the first address refuses (a port nothing listens on), the second takes it.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // dropped: closed
        let agent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let targets = [closed, agent.local_addr().unwrap()];
        let Ok(Connection::Tcp(mut stream)) = connect_any(false, "agent", targets.into_iter()) else {
            panic!("connected through the second address");
        };
        stream.write_all(b"{}\n").unwrap();
        let (mut accepted, _) = agent.accept().unwrap();
        let mut got = [0u8; 3];
        accepted.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"{}\n");
        // UDP to an IPv6 address: a socket bound to 0.0.0.0 could not reach it.
        let agent = UdpSocket::bind("[::1]:0").unwrap();
        agent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let endpoint = AgentEndpoint::Udp(agent.local_addr().unwrap().to_string());
        let Ok(mut connection) = connect(&endpoint) else { panic!("connected to {endpoint:?}") };
        send_one(&mut connection, "{}").unwrap();
        let mut buf = [0u8; 8];
        let n = agent.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"{}\n");
    }

    #[test]
    fn endpoints_are_tcp_or_udp_with_a_host_and_a_port() {
        assert_eq!(AgentEndpoint::parse("tcp://127.0.0.1:25888"), Ok(AgentEndpoint::Tcp("127.0.0.1:25888".into())));
        assert_eq!(AgentEndpoint::parse("udp://localhost:25888"), Ok(AgentEndpoint::Udp("localhost:25888".into())));
        for bad in ["127.0.0.1:25888", "http://x:1", "tcp://:25888", "tcp://host", "udp://host:port"] {
            assert!(AgentEndpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
