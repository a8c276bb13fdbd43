//! A static file server for the example web page (`--web DIR`), on a port of its own so that
//! the page is a different origin than the API, as it is in production.

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::hosts::LocalHosts;

/// What the page server needs: the folder, the API's port for the page's `config.js`, and
/// the `Host` names it answers under.
pub struct WebRoot {
    pub dir: PathBuf,
    pub api_port: u16,
    pub hosts: LocalHosts,
    /// The example single-page app, served under `/spa/`.
    pub spa: Option<Spa>,
}

/// The example single-page app (examples/spa) and what its `config.js` names: the OpenID
/// Provider (the issuer) and the development app's client_id.
pub struct Spa {
    pub dir: PathBuf,
    pub authority: String,
    pub client_id: String,
}

/// `value` as a JavaScript string literal that is safe inside a script file.
fn js_string(value: &str) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "\"\"".to_owned())
        .replace('<', "\\u003c")
}

fn content_type(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()? {
        "html" => Some("text/html; charset=utf-8"),
        "js" => Some("text/javascript; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        "svg" => Some("image/svg+xml"),
        "png" => Some("image/png"),
        "ico" => Some("image/x-icon"),
        "json" => Some("application/json"),
        _ => None,
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

impl WebRoot {
    /// One request: a file of the folder (no hidden files, nothing outside it), or
    /// `config.js` pointing the page at this local-api, on the host the browser used so
    /// that page and API stay on one site (the refresh cookie is `SameSite=Strict`).
    pub async fn answer(
        &self,
        method: &Method,
        path: &str,
        host: Option<&str>,
    ) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        if !self.hosts.allows(host) {
            // A page that rebound its own name to this address reads nothing here.
            return plain(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected: this page answers only under the address local-api listens on, \
                 or localhost\n",
            );
        }
        if let Some(spa) = &self.spa
            && let Some(rest) = path.strip_prefix("/spa")
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return spa.answer(rest).await;
        }
        let relative = match path.trim_start_matches('/') {
            // The screens the mailed links open; the page reads the token from the fragment.
            "" | "verify-email" | "reset-password" => "index.html",
            other => other,
        };
        if relative == "config.js" {
            let hostname = host
                .and_then(|h| h.rsplit_once(':').map(|(name, _)| name).or(Some(h)))
                .filter(|h| !h.is_empty())
                .unwrap_or("127.0.0.1");
            // The host passed `allows`; written as a JSON string all the same, so that no
            // header can ever end the string and add script.
            let url = serde_json::to_string(&format!("http://{hostname}:{}", self.api_port))
                .unwrap_or_else(|_| "\"http://127.0.0.1\"".to_owned())
                .replace('<', "\\u003c");
            let script =
                format!("// Written by local-api for this run.\nwindow.AUTH_API_URL = {url};\n");
            return file_response(Bytes::from(script), "text/javascript; charset=utf-8");
        }
        serve_file(&self.dir, relative).await
    }
}

impl Spa {
    async fn answer(&self, rest: &str) -> Response<Full<Bytes>> {
        let relative = match rest.trim_start_matches('/') {
            "" => "index.html",
            other => other,
        };
        if relative == "config.js" {
            let script = format!(
                "// Written by local-api for this run.\nwindow.AUTH_AUTHORITY = {};\n\
                 window.AUTH_CLIENT_ID = {};\n",
                js_string(&self.authority),
                js_string(&self.client_id)
            );
            return file_response(Bytes::from(script), "text/javascript; charset=utf-8");
        }
        serve_file(&self.dir, relative).await
    }
}

/// `relative` (no `..`, no hidden files, a known type) from `dir`.
async fn serve_file(dir: &Path, relative: &str) -> Response<Full<Bytes>> {
    let safe = relative
        .split('/')
        .all(|part| !part.is_empty() && !part.starts_with('.') && !part.contains('\\'));
    let file = dir.join(relative);
    let Some(kind) = content_type(&file).filter(|_| safe) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => file_response(Bytes::from(bytes), kind),
        Err(_) => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn file_response(bytes: Bytes, kind: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(bytes));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Serves `root` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, root: Arc<WebRoot>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let root = Arc::clone(&root);
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let root = Arc::clone(&root);
                        async move {
                            let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
                            Ok::<_, Infallible>(root.answer(req.method(), req.uri().path(), host).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}
