//! A TCP proxy on 127.0.0.1 in front of the local CloudWatch that a test can make hang (bytes are held, then
//! forwarded when it resumes, as a paused process or a stalled network does) or lose responses (the request
//! reaches the server, the answer never reaches the client).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Passes everything on.
    Forward,
    /// Holds everything until the mode changes, then passes it on.
    Hang,
    /// Passes requests on, drops the server's answers and closes the client's connection.
    DropResponses,
}

/// The proxy; it stops when dropped.
pub struct Proxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Chunks read from a client and not yet written to the server.
    held: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `upstream` (an `http://127.0.0.1:port` URL), forwarding.
    pub async fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr =
            upstream.trim_start_matches("http://").trim_end_matches('/').parse().expect("an http://ip:port URL");
        assert!(upstream.ip().is_loopback(), "the proxy only talks to this machine");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().expect("the proxy's address");
        let (mode, _) = watch::channel(Mode::Forward);
        let held = Arc::new(AtomicUsize::new(0));
        let (modes, counter) = (mode.clone(), Arc::clone(&held));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(carry(client, upstream, modes.subscribe(), Arc::clone(&counter)));
            }
        });
        Proxy { address, mode, held, task }
    }

    /// The proxy's URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Changes what the proxy does from now on.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Whether request bytes are held (a request is hanging).
    pub fn holds(&self) -> bool {
        self.held.load(SeqCst) > 0
    }

    /// Waits (at most `limit`) until no request bytes are held.
    pub async fn wait_until_nothing_is_held(&self, limit: Duration) {
        tokio::time::timeout(limit, async {
            while self.held.load(SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the proxy passed on everything it held");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits while the mode is `Hang`; returns the mode then.
async fn unless_hung(modes: &mut watch::Receiver<Mode>) -> Mode {
    modes.wait_for(|mode| *mode != Mode::Hang).await.map_or(Mode::Forward, |mode| *mode)
}

/// Carries one client's connection. The server hears of it when its first bytes are let through: a connection
/// opened at once and held while the proxy hangs would be closed by the server as idle (the local CloudWatch does
/// after a few seconds), and the request held on it lost.
async fn carry(client: TcpStream, upstream: SocketAddr, mut modes: watch::Receiver<Mode>, held: Arc<AtomicUsize>) {
    let (mut client_read, mut client_write) = client.into_split();
    let mut buf = vec![0u8; 64 * 1024];
    let first = match client_read.read(&mut buf).await {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    held.fetch_add(1, SeqCst);
    unless_hung(&mut modes).await;
    let Ok(server) = TcpStream::connect(upstream).await else {
        held.fetch_sub(1, SeqCst);
        return;
    };
    let (mut server_read, mut server_write) = server.into_split();
    let mut up_modes = modes.clone();
    let up = async move {
        let mut n = first;
        loop {
            let written = server_write.write_all(&buf[..n]).await;
            held.fetch_sub(1, SeqCst);
            if written.is_err() {
                break;
            }
            n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            held.fetch_add(1, SeqCst);
            unless_hung(&mut up_modes).await;
        }
    };
    let mut down_modes = modes;
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if unless_hung(&mut down_modes).await == Mode::DropResponses {
                // The server stored the request and answered; the client never hears of it.
                let _ = client_write.shutdown().await;
                break;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    // The request side runs to its end (held bytes are still passed on after the client gave up).
    let up = tokio::spawn(up);
    down.await;
    let _ = up.await;
}
