//! `auth-admin import`: the Node.js original's users, brought over with their hashes.
//!
//! The original keeps one item per user keyed by `username` (lower-cased, trimmed), with
//! `name`, `email` (as typed: not normalized, not unique) and `password`, a bcryptjs hash
//! (`$2a$`, cost 10) of the password with surrounding white space trimmed. Ours are keyed by
//! normalized email. A row is imported only if it is whole and its email is its own:
//! rows whose emails collide after normalization, or whose email or hash is missing or
//! malformed, are reported and skipped, never half-imported.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use accounts::model::credentials::Email;
use accounts::model::user::UserRecord;
use accounts::store::{AdminStore, StoreError, UserStore};
use aws_sdk_dynamodb::types::AttributeValue;
use clap::Args;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use time::OffsetDateTime;

use crate::context::Context;
use crate::exit;
use crate::failure::Failure;
use crate::output::{self, Format};

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ImportSource {
    /// The original's DynamoDB table (e.g. audio_client_server_users), scanned in the same
    /// account and region.
    #[arg(long)]
    pub from_table: Option<String>,
    /// A file with one user a line: plain JSON ({"username","name","email","password"}) or
    /// DynamoDB JSON ({"username":{"S":…},…}, as `aws dynamodb scan` prints items).
    #[arg(long)]
    pub from_json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub source: ImportSource,
    /// Check and report, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse hashes of a higher bcrypt cost (4 to 31): each login to such an account is
    /// slower than everyone else's (which tells that the account exists) until its first
    /// successful login rehashes it at BCRYPT_COST, and at cost 31 a login never finishes.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub max_cost: u32,
}

/// One row of the original's table, as read.
#[derive(Debug, Clone, Default)]
pub struct LegacyRow {
    /// Where it came from: the line number of the file, or the scan position.
    pub position: usize,
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// Why a row was not imported.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub row: usize,
    pub username: Option<String>,
    pub reason: String,
}

/// What an import did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub rows: usize,
    pub imported: usize,
    pub already_present: usize,
    pub skipped: Vec<Skipped>,
    pub dry_run: bool,
}

/// A string attribute of a plain JSON row (`"x"`) or a DynamoDB JSON one (`{"S":"x"}`).
fn json_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(typed) => typed.get("S")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Reads a file of one JSON object a line. A line that is not a JSON object is a skipped row.
pub fn rows_from_json(
    reader: impl BufRead,
) -> Result<(Vec<LegacyRow>, Vec<Skipped>), std::io::Error> {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let position = index + 1;
        match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(object)) => {
                // `aws dynamodb scan` items may come wrapped as {"Item": {...}}.
                let object = match object.get("Item") {
                    Some(Value::Object(inner)) => inner.clone(),
                    _ => object,
                };
                rows.push(LegacyRow {
                    position,
                    username: json_string(object.get("username")),
                    name: json_string(object.get("name")),
                    email: json_string(object.get("email")),
                    password: json_string(object.get("password")),
                });
            }
            _ => bad.push(Skipped {
                row: position,
                username: None,
                reason: "not a JSON object".into(),
            }),
        }
    }
    Ok((rows, bad))
}

fn attribute(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

/// Scans the original's table, every page, counting on stderr.
async fn rows_from_table(ctx: &mut Context<'_>, table: &str) -> Result<Vec<LegacyRow>, Failure> {
    let client = ctx.store.client();
    let mut rows = Vec::new();
    let mut start = None;
    loop {
        let output = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| {
                Failure::new(
                    exit::FAILED,
                    format!(
                        "cannot scan {table}: {}",
                        shared::error_chain(&aws_sdk_dynamodb::Error::from(e))
                    ),
                )
            })?;
        for item in output.items.unwrap_or_default() {
            rows.push(LegacyRow {
                position: rows.len() + 1,
                username: attribute(&item, "username"),
                name: attribute(&item, "name"),
                email: attribute(&item, "email"),
                password: attribute(&item, "password"),
            });
        }
        write!(ctx.err, "\rread: {} rows", rows.len())?;
        ctx.err.flush()?;
        match output.last_evaluated_key {
            Some(next) if !next.is_empty() => start = Some(next),
            _ => break,
        }
    }
    writeln!(ctx.err)?;
    Ok(rows)
}

/// Whether `hash` is a bcrypt hash our login verifies: `$2a$`, `$2b$` or `$2y$`, cost 4 to
/// 31, 53 characters of bcrypt's base64 after the cost.
pub fn is_bcrypt(hash: &str) -> bool {
    let bytes = hash.as_bytes();
    hash.len() == 60
        && (hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$"))
        && hash[4..6]
            .parse::<u32>()
            .is_ok_and(|cost| (4..=31).contains(&cost))
        && bytes[6] == b'$'
        && bytes[7..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'/')
}

/// The bcrypt cost of a hash [`is_bcrypt`] accepted.
fn bcrypt_cost(hash: &str) -> u32 {
    hash.get(4..6)
        .and_then(|c| c.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The users to create, and the rows that cannot be: one decision per row, made before
/// anything is written. Hashes above `max_cost` are refused.
pub fn plan(
    rows: Vec<LegacyRow>,
    now: OffsetDateTime,
    max_cost: u32,
) -> (Vec<(usize, UserRecord)>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let mut by_email: BTreeMap<String, Vec<(LegacyRow, Email, String)>> = BTreeMap::new();
    for row in rows {
        let skip = |reason: &str| Skipped {
            row: row.position,
            username: row.username.clone(),
            reason: reason.to_owned(),
        };
        let Some(raw_email) = row.email.as_deref().filter(|e| !e.trim().is_empty()) else {
            skipped.push(skip("no email"));
            continue;
        };
        let Ok(email) = Email::parse(raw_email) else {
            skipped.push(skip("malformed email"));
            continue;
        };
        let Some(hash) = row.password.clone().filter(|h| is_bcrypt(h)) else {
            skipped.push(skip("password is not a bcrypt hash"));
            continue;
        };
        let cost = bcrypt_cost(&hash);
        if cost > max_cost {
            skipped.push(skip(&format!(
                "bcrypt cost {cost} is above --max-cost {max_cost}"
            )));
            continue;
        }
        by_email
            .entry(email.as_str().to_owned())
            .or_default()
            .push((row, email, hash));
    }
    let mut users = Vec::new();
    for (email, group) in by_email {
        if group.len() > 1 {
            let usernames: Vec<String> = group
                .iter()
                .map(|(row, ..)| row.username.clone().unwrap_or_else(|| "?".into()))
                .collect();
            for (row, ..) in &group {
                skipped.push(Skipped {
                    row: row.position,
                    username: row.username.clone(),
                    reason: format!(
                        "{email} is the email of {} rows ({}): pick one by hand",
                        group.len(),
                        usernames.join(", ")
                    ),
                });
            }
            continue;
        }
        let Some((row, email, hash)) = group.into_iter().next() else {
            continue;
        };
        users.push((
            row.position,
            UserRecord {
                username: row.username.map(|u| u.trim().to_owned()),
                name: row.name,
                // The original never proved anyone read mail at these addresses, so
                // email_verified stays false; its hashes are of the trimmed password.
                legacy_password: true,
                mfa: Default::default(),
                ..UserRecord::new(email, SecretString::from(hash), now)
            },
        ));
    }
    skipped.sort_by_key(|s| s.row);
    (users, skipped)
}

pub async fn import(ctx: &mut Context<'_>, args: ImportArgs) -> Result<(), Failure> {
    let (rows, mut skipped) = match (&args.source.from_table, &args.source.from_json) {
        (Some(table), _) => (rows_from_table(ctx, table).await?, Vec::new()),
        (None, Some(path)) => {
            let file = std::fs::File::open(path).map_err(|e| {
                Failure::new(exit::USAGE, format!("cannot read {}: {e}", path.display()))
            })?;
            rows_from_json(std::io::BufReader::new(file)).map_err(|e| {
                Failure::new(exit::FAILED, format!("cannot read {}: {e}", path.display()))
            })?
        }
        (None, None) => {
            return Err(Failure::new(exit::USAGE, "--from-table or --from-json"));
        }
    };
    if !args.dry_run {
        ctx.operator().await?;
    }
    let mut summary = Summary {
        rows: rows.len() + skipped.len(),
        dry_run: args.dry_run,
        ..Summary::default()
    };
    let (users, mut planned_skips) = plan(
        rows,
        OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        args.max_cost,
    );
    skipped.append(&mut planned_skips);
    let total = users.len();
    if !args.dry_run {
        ctx.intend(
            "import",
            None,
            format!("import {} of {} rows", total, summary.rows),
        )
        .await?;
    }
    let written = create_users(ctx, &users, args.dry_run, &mut summary).await;
    if total > 0 {
        writeln!(ctx.err)?;
    }
    skipped.sort_by_key(|s| s.row);
    summary.skipped = skipped;
    let outcome = written.map(|()| {
        (
            (),
            format!(
                "{} rows: {} imported, {} already present, {} skipped",
                summary.rows,
                summary.imported,
                summary.already_present,
                summary.skipped.len()
            ),
        )
    });
    if args.dry_run {
        outcome?;
    } else {
        // A failure half-way is recorded with what was imported before it.
        let outcome = outcome.map_err(|failure| {
            Failure::new(
                failure.code,
                format!(
                    "{} (after {} imported, {} already present)",
                    failure.message, summary.imported, summary.already_present
                ),
            )
        });
        ctx.conclude("import", None, outcome).await?;
    }
    match ctx.format {
        Format::Json => {
            writeln!(ctx.out, "{}", output::json_text(&json!(summary)))?;
        }
        Format::Table => {
            let verb = if args.dry_run {
                "would import"
            } else {
                "imported"
            };
            writeln!(
                ctx.out,
                "{} rows: {verb} {}, already present {}, skipped {}",
                summary.rows,
                summary.imported,
                summary.already_present,
                summary.skipped.len()
            )?;
            if !summary.skipped.is_empty() {
                let rows: Vec<Vec<String>> = summary
                    .skipped
                    .iter()
                    .map(|s| {
                        vec![
                            s.row.to_string(),
                            s.username.clone().unwrap_or_else(|| "-".into()),
                            s.reason.clone(),
                        ]
                    })
                    .collect();
                output::table(ctx.out, &["ROW", "USERNAME", "SKIPPED BECAUSE"], &rows)?;
            }
        }
    }
    Ok(())
}

/// Creates `users` (with `dry_run`, only looks them up), counting into `summary`, with a
/// progress bar on stderr.
async fn create_users(
    ctx: &mut Context<'_>,
    users: &[(usize, UserRecord)],
    dry_run: bool,
    summary: &mut Summary,
) -> Result<(), Failure> {
    let total = users.len();
    for (done, (_, user)) in users.iter().enumerate() {
        let present = if dry_run {
            ctx.store.find_user(&user.email).await?.is_some()
        } else {
            match ctx.store.create_user(user).await {
                Ok(()) => false,
                Err(StoreError::EmailTaken) => true,
                Err(other) => return Err(other.into()),
            }
        };
        if present {
            summary.already_present += 1;
        } else {
            summary.imported += 1;
        }
        write!(
            ctx.err,
            "\r{} {}/{}",
            progress_bar(done + 1, total),
            done + 1,
            total
        )?;
        ctx.err.flush()?;
    }
    Ok(())
}

/// `[#####-----]`, 20 wide.
fn progress_bar(done: usize, total: usize) -> String {
    let filled = (done * 20).checked_div(total).unwrap_or(20).min(20);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(20 - filled))
}
