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
use aws_smithy_runtime_api::client::result::ConnectorError;
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

/// An HTTP client that never answers: every request stays pending forever (but the first ones, with
/// [`NeverClient::answering_first`]).
#[derive(Clone, Debug, Default)]
pub struct NeverClient {
    calls: Arc<AtomicUsize>,
    answered: usize,
}

impl NeverClient {
    /// A client that has been sent nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client that answers its first `n` requests with success, and never answers the others.
    pub fn answering_first(n: usize) -> Self {
        NeverClient { answered: n, ..Self::default() }
    }

    /// The requests it was sent.
    pub fn num_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl HttpConnector for NeverClient {
    fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.answered {
            let response = cbor_response(None).map(SdkBody::from);
            return HttpConnectorFuture::ready(Ok(HttpResponse::try_from(response).expect("a valid response")));
        }
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

/// What a [`gate`] does with a request instead of passing it on.
#[derive(Debug)]
pub enum Intercepted {
    /// Answers it with this response (the request never reaches the server).
    Respond(http::Response<Vec<u8>>),
    /// Fails it as a refused connection would: the server surely did not see it.
    Refuse,
    /// Fails it as a connection reset after the request was sent would: the server may have stored it.
    Reset,
}

type Intercept = dyn Fn(&HttpRequest) -> Option<Intercepted> + Send + Sync;

/// An HTTP client that passes each request to `inner` unless `intercept` answers or refuses it first.
#[derive(Clone)]
struct Gate {
    inner: SharedHttpClient,
    intercept: Arc<Intercept>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gate")
    }
}

#[derive(Clone)]
struct GateConnector {
    inner: SharedHttpConnector,
    intercept: Arc<Intercept>,
}

impl fmt::Debug for GateConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GateConnector")
    }
}

impl HttpConnector for GateConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match (self.intercept)(&request) {
            None => self.inner.call(request),
            Some(Intercepted::Respond(response)) => {
                let response = HttpResponse::try_from(response.map(SdkBody::from)).expect("a valid http 1.x response");
                HttpConnectorFuture::ready(Ok(response))
            }
            Some(Intercepted::Refuse) => HttpConnectorFuture::ready(Err(ConnectorError::io(
                std::io::Error::new(ErrorKind::ConnectionRefused, "connection refused (injected)").into(),
            ))),
            Some(Intercepted::Reset) => HttpConnectorFuture::ready(Err(ConnectorError::io(
                std::io::Error::new(ErrorKind::ConnectionReset, "connection reset (injected)").into(),
            ))),
        }
    }
}

impl HttpClient for Gate {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        GateConnector { inner, intercept: Arc::clone(&self.intercept) }.into_shared()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("gate", None))
    }
}

/// `inner`, with `intercept` deciding first what happens to each request.
pub fn gate(
    inner: SharedHttpClient,
    intercept: impl Fn(&HttpRequest) -> Option<Intercepted> + Send + Sync + 'static,
) -> SharedHttpClient {
    Gate { inner, intercept: Arc::new(intercept) }.into_shared()
}

/// A CBOR text string (short ones only: < 24 bytes).
fn cbor_text(s: &str) -> Vec<u8> {
    assert!(s.len() < 24);
    let mut out = vec![0x60 + s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

/// A response as CloudWatch's rpc-v2-cbor protocol sends it: `None` = success, else an error code and status.
pub fn cbor_response(error: Option<(&str, u16)>) -> http::Response<Vec<u8>> {
    let builder =
        http::Response::builder().header("smithy-protocol", "rpc-v2-cbor").header("content-type", "application/cbor");
    match error {
        None => builder.status(200).body(vec![0xa0]).unwrap(),
        Some((code, status)) => {
            let mut body = vec![0xa2];
            body.extend(cbor_text("__type"));
            body.extend(cbor_text(code));
            body.extend(cbor_text("message"));
            body.extend(cbor_text("injected fault"));
            builder.status(status).header("x-amzn-query-error", format!("{code};Sender")).body(body).unwrap()
        }
    }
}
