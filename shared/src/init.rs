//! Reporting a failed cold start to the Lambda Runtime API.
//!
//! A Lambda whose initialisation fails should say why through `/runtime/init/error`, so the
//! failure shows up as an init error with a clear message instead of a bare process exit.
//! lambda_runtime does this only for SnapStart hooks, hence this small client: one blocking
//! HTTP/1.1 request to the local Runtime API endpoint, before the runtime loop starts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Posts `message` as an init error when running under a Runtime API (`AWS_LAMBDA_RUNTIME_API`
/// set); does nothing otherwise. Returns whether the Runtime API accepted the report.
pub fn report_init_error(error_type: &str, message: &str) -> bool {
    match std::env::var("AWS_LAMBDA_RUNTIME_API") {
        Ok(api) if !api.is_empty() => post_init_error(&api, error_type, message).unwrap_or(false),
        _ => false,
    }
}

fn post_init_error(api: &str, error_type: &str, message: &str) -> std::io::Result<bool> {
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string();
    let mut stream = TcpStream::connect(api)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Content-Type: application/json\r\n\
         Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut status_line = [0u8; 12];
    stream.read_exact(&mut status_line)?;
    // "HTTP/1.1 202"
    Ok(status_line.starts_with(b"HTTP/1.1 2") || status_line.starts_with(b"HTTP/1.0 2"))
}

/// Unwraps a start-up result; on error, logs it, reports it to the Runtime API and returns it
/// for `main` to exit with.
pub fn or_report<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, E> {
    result.inspect_err(|e| {
        let message = e.to_string();
        tracing::error!(error = %message, "cold start failed");
        report_init_error("Runtime.ConfigError", &message);
    })
}
