//! The HTTP face's plumbing: the route table, what is read of a request, bodies, replies,
//! problems (RFC 9457), the browser rules (CORS, the refresh cookie, CSRF) and the Lambda
//! event's sanitizing.

pub mod body;
pub mod browser;
pub mod lambda;
pub mod oauth;
pub mod pages;
pub mod problem;
pub mod reply;
pub mod request;
pub mod routes;

/// The future `make` builds, built and kept on the heap. A `match` that awaits a different
/// future in each arm gives, in a debug build, every arm's future its own slot in the stack
/// frame of the function that awaits it (hundreds of KB with the AWS SDK's futures inside,
/// past a 2 MiB thread stack); built here, each is a pointer there.
pub fn on_heap<'a, T, Fut: std::future::Future<Output = T> + Send + 'a>(
    make: impl FnOnce() -> Fut,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(make())
}
