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
