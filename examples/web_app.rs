//! A small web application on `greennet::http`, shaped like one written for a framework: a
//! router of plain blocking handlers, one of which calls another service.
//!
//! Usage: `cargo run --example web_app -- [PORT]` (default 8080; 0 picks a free port). It binds
//! 127.0.0.1, prints `listening on <address>`, and serves:
//!
//! - `GET /`: `hello`
//! - `GET /users/<id>`: a JSON-ish description of user `<id>`
//! - `POST /echo`: the request body, back
//! - `GET /slow`: asks an upstream service (started by this program, answering after ~100 ms)
//!   through a `greennet::http::client::Client` and relays its answer. Many `/slow` requests at
//!   once all finish in about 100 ms: each waits on its own coroutine.
//!
//! ```text
//! $ curl localhost:8080/users/42
//! {"id": "42", "name": "user 42"}
//! $ time (for i in $(seq 50); do curl -s localhost:8080/slow & done; wait)
//! ```
use greennet::http::client::Client;
use greennet::http::{Body, Method, Request, Response, Server, StatusCode};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

/// The values a route's `<name>` segments matched.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

type Handler = fn(Request<Body>, Params) -> Response<Body>;

/// Routes by method and path pattern (`/users/<id>`), first match wins.
#[derive(Default)]
struct Router {
    routes: Vec<(Method, &'static str, Handler)>,
}

impl Router {
    fn route(mut self, method: Method, pattern: &'static str, handler: Handler) -> Router {
        self.routes.push((method, pattern, handler));
        self
    }

    fn handle(&self, req: Request<Body>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        for (method, pattern, handler) in &self.routes {
            if let Some(params) = matches(pattern, &path) {
                if req.method() == method {
                    return handler(req, params);
                }
            }
        }
        text(StatusCode::NOT_FOUND, format!("no route for {path}\n"))
    }
}

/// The `<name>` values if `path` fits `pattern`, segment by segment.
fn matches(pattern: &str, path: &str) -> Option<Params> {
    let (pattern, path): (Vec<&str>, Vec<&str>) =
        (pattern.split('/').collect(), path.split('/').collect());
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = Vec::new();
    for (want, got) in pattern.iter().zip(&path) {
        match want.strip_prefix('<').and_then(|w| w.strip_suffix('>')) {
            Some(name) if !got.is_empty() => params.push((name.to_owned(), (*got).to_owned())),
            Some(_) => return None,
            None if want == got => {}
            None => return None,
        }
    }
    Some(Params(params))
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.into())
        .expect("a valid response")
}

fn index(_req: Request<Body>, _params: Params) -> Response<Body> {
    text(StatusCode::OK, "hello")
}

fn user(_req: Request<Body>, params: Params) -> Response<Body> {
    let id = params.get("id").replace(['"', '\\'], "");
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(format!(
            "{{\"id\": \"{id}\", \"name\": \"user {id}\"}}\n"
        )))
        .expect("a valid response")
}

fn echo(req: Request<Body>, _params: Params) -> Response<Body> {
    Response::new(req.into_body())
}

/// Where the upstream service listens; set once at start-up.
static UPSTREAM: OnceLock<String> = OnceLock::new();

/// One client for every call to the upstream: its connections are kept and reused.
static CLIENT: LazyLock<Client> = LazyLock::new(Client::new);

fn slow(_req: Request<Body>, _params: Params) -> Response<Body> {
    let url = format!(
        "{}/report",
        UPSTREAM.get().expect("the upstream is started first")
    );
    // A bounded wait on the other service: it parks this request's coroutine only.
    match greennet::timeout(Duration::from_secs(5), || CLIENT.get(&url)) {
        Ok(Ok(answer)) => {
            let body = answer.into_body().into_string().unwrap_or_default();
            text(StatusCode::OK, format!("upstream says: {body}\n"))
        }
        Ok(Err(e)) => text(StatusCode::BAD_GATEWAY, format!("upstream failed: {e}\n")),
        Err(_) => text(StatusCode::GATEWAY_TIMEOUT, "upstream took too long\n"),
    }
}

/// The stand-in for another service: answers every request after about 100 ms.
fn start_upstream() -> std::io::Result<()> {
    let upstream = Server::new(|_req| {
        greennet::thread::sleep(Duration::from_millis(100));
        Response::new(Body::from("all good"))
    })
    .bind("127.0.0.1:0")?
    .start()?;
    UPSTREAM
        .set(format!("http://{}", upstream.local_addr()))
        .expect("started once");
    // Dropping the handle detaches the upstream: it runs as long as the program does.
    Ok(())
}

#[green::main]
fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("bad port {arg:?}: {e}"),
            )
        })?,
        None => 8080,
    };
    start_upstream()?;
    let router = Router::default()
        .route(Method::GET, "/", index)
        .route(Method::GET, "/users/<id>", user)
        .route(Method::POST, "/echo", echo)
        .route(Method::GET, "/slow", slow);
    let server = Server::new(move |req| router.handle(req)).bind(("127.0.0.1", port))?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever()
}
