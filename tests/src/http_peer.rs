//! A bare HTTP/1.1 peer for the tests' own receivers (webhooks, hooks): one request read
//! whole off a socket, one answer written, and the Standard Webhooks signature of a request
//! checked from the specification (not with the product's signer).

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request as read: its headers (lower-case names) and body.
pub type Received = (HashMap<String, String>, String);

/// The request on `socket`, once its body is in; `None` if the peer closed first.
pub async fn read_request(socket: &mut TcpStream) -> Option<Received> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let headers: HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if body.len() >= length {
            return Some((headers, body[..length].to_owned()));
        }
    }
}

/// Answers `status` (e.g. `200 OK`) with a JSON `body`, and closes.
pub async fn respond(socket: &mut TcpStream, status: &str, body: &str) {
    let _ = socket
        .write_all(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
}

/// Whether the request is signed per Standard Webhooks with `secret` (`whsec_…`): the
/// base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, computed here.
pub fn standard_webhooks_signed(
    secret: &str,
    headers: &HashMap<String, String>,
    body: &str,
) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let (Some(id), Some(timestamp), Some(signature)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(key) =
        base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_"))
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    signature.split(' ').any(|s| s == expected)
}
