//! How results are shown: aligned columns for people, JSON for machines.

use std::io::Write;

use accounts::model::session::SessionFamily;
use accounts::model::user::UserRecord;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON document on stdout.
    Json,
}

/// Whether `c` must not reach a terminal as it is: a control character (C0, DEL, C1, which
/// include the escape sequences that move the cursor, retitle the window or rewrite what was
/// printed) or a bidirectional override that reorders what the operator reads.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [`unsafe_char`] written as a visible escape (`\u{1b}`): values from the
/// table (names, usernames, user agents) are written by whoever registered or signed in.
pub fn clean(text: &str) -> String {
    if !text.chars().any(unsafe_char) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `value` as pretty JSON with no raw control character: serde_json escapes C0 already; DEL,
/// C1 and the bidirectional overrides are written as `\uXXXX` too (valid in JSON strings,
/// the only place they can occur).
pub fn json_text(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    // Newlines outside strings are the pretty layout; inside strings serde_json escaped them.
    let raw = |c: char| c != '\n' && unsafe_char(c);
    if !text.chars().any(raw) {
        return text;
    }
    text.chars()
        .map(|c| {
            if raw(c) {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn rfc3339_ms(ms: i64) -> String {
    accounts::model::session::rfc3339_seconds(ms).unwrap_or_default()
}

/// A user as shown: everything but the password hash and token hashes.
pub fn user_json(user: &UserRecord) -> Value {
    json!({
        "user_id": user.user_id.to_string(),
        "email": user.email.as_str(),
        "roles": user.roles,
        "email_verified": user.email_verified,
        "disabled": user.disabled,
        "created_at": user.created_at.format(&Rfc3339).unwrap_or_default(),
        "username": user.username,
        "name": user.name,
        "legacy_password": user.legacy_password,
    })
}

pub fn session_json(family: &SessionFamily, ends_at: i64) -> Value {
    json!({
        "id": family.family_id.to_string(),
        "created_at": rfc3339_ms(family.created_at_ms),
        "last_refreshed_at": family.last_refreshed_at_ms.map(rfc3339_ms),
        "expires_at": rfc3339_ms(ends_at * 1000),
        "user_agent": family.client.user_agent,
        "source_ip": family.client.source_ip,
    })
}

/// Rows under headers, each column as wide as its widest cell; every cell [`clean`].
pub fn table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| clean(cell)).collect())
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// A user's fields, one per line.
pub fn user_details(out: &mut dyn Write, user: &UserRecord) -> std::io::Result<()> {
    let value = user_json(user);
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = [
        "email",
        "user_id",
        "roles",
        "email_verified",
        "disabled",
        "created_at",
        "username",
        "name",
        "legacy_password",
    ]
    .iter()
    .map(|k| vec![(*k).to_owned(), shown(&value[*k])])
    .collect();
    table(out, &["FIELD", "VALUE"], &rows)
}

/// One row of `users list`.
pub fn user_row(user: &UserRecord) -> Vec<String> {
    vec![
        user.email.as_str().to_owned(),
        user.user_id.to_string(),
        user.roles.join(","),
        if user.email_verified { "yes" } else { "no" }.into(),
        if user.disabled { "yes" } else { "no" }.into(),
        user.created_at.format(&Rfc3339).unwrap_or_default(),
    ]
}

pub const USER_HEADERS: [&str; 6] = [
    "EMAIL", "USER ID", "ROLES", "VERIFIED", "DISABLED", "CREATED",
];

/// One row of `sessions list`.
pub fn session_row(family: &SessionFamily, ends_at: i64) -> Vec<String> {
    let value = session_json(family, ends_at);
    [
        "id",
        "created_at",
        "last_refreshed_at",
        "expires_at",
        "user_agent",
        "source_ip",
    ]
    .iter()
    .map(|k| value[*k].as_str().unwrap_or("-").to_owned())
    .collect()
}

pub const SESSION_HEADERS: [&str; 6] = [
    "ID",
    "CREATED",
    "LAST REFRESH",
    "EXPIRES",
    "USER AGENT",
    "SOURCE IP",
];
