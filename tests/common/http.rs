//! Test HTTP clients for the AWS SDK, written on the public traits of `aws-smithy-runtime-api`: a fake server
//! answering from a function, a server that never answers, and a loopback port no connection to ever opens (for the
//! SDK's real HTTP client and its connect timeout).

use std::fmt;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;

type Respond = dyn Fn(http::Request<SdkBody>) -> http::Response<SdkBody> + Send + Sync;

/// An HTTP client whose every request is answered by a function, at once.
#[derive(Clone)]
struct FnClient(Arc<Respond>);

impl fmt::Debug for FnClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnClient")
    }
}

impl HttpConnector for FnClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = request.try_into_http1x().expect("the SDK's request converts to an http 1.x request");
        let response = HttpResponse::try_from((self.0)(request)).expect("a valid http 1.x response");
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for FnClient {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        self.clone().into_shared()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("fn-client", None))
    }
}

/// An HTTP client that answers every request with `respond(request)`.
pub fn infallible_client_fn<B: Into<SdkBody>>(
    respond: impl Fn(http::Request<SdkBody>) -> http::Response<B> + Send + Sync + 'static,
) -> SharedHttpClient {
    FnClient(Arc::new(move |request| respond(request).map(Into::into))).into_shared()
}

/// An HTTP client that never answers: every request stays pending forever.
#[derive(Clone, Debug, Default)]
pub struct NeverClient {
    calls: Arc<AtomicUsize>,
}

impl NeverClient {
    /// A client that has been sent nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The requests it was sent.
    pub fn num_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl HttpConnector for NeverClient {
    fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        HttpConnectorFuture::new(std::future::pending())
    }
}

impl HttpClient for NeverClient {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        self.clone().into_shared()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("never-client", None))
    }
}

/// The SDK's real HTTP client (hyper, with the SDK's connect and read timeouts), for plain `http://` endpoints.
pub fn real_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

/// A loopback (127.0.0.1) port that no new connection to ever opens: a listener with a backlog of one that never
/// accepts, its accept queue filled first, so the kernel drops every further connection request (SYN) and the
/// client's `connect` hangs until the client gives up. Must be made inside a tokio runtime.
#[derive(Debug)]
pub struct UnopenablePort {
    address: SocketAddr,
    _listener: tokio::net::TcpListener,
    _queued: Vec<TcpStream>,
}

impl UnopenablePort {
    /// Listens on a free loopback port and fills its accept queue.
    pub fn listen() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket.bind((Ipv4Addr::LOCALHOST, 0).into()).expect("bind to a free loopback port");
        let listener = socket.listen(1).expect("listen with a backlog of one");
        let address = listener.local_addr().expect("the listener's address");
        let mut queued = Vec::new();
        // Connect until a connection no longer opens: that one proves a connect to the port now hangs.
        for _ in 0..16 {
            match TcpStream::connect_timeout(&address, Duration::from_millis(250)) {
                Ok(stream) => queued.push(stream),
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                    return UnopenablePort { address, _listener: listener, _queued: queued };
                }
                Err(e) => panic!("connecting to the listener on {address} failed instead of hanging: {e}"),
            }
        }
        panic!("the accept queue of the listener on {address} never filled: {} connections opened", queued.len());
    }

    /// The port's URL: `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}
