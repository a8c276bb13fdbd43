//! `auth-admin clients …`: the OAuth client registry. A secret is printed once, when it is
//! made (create, rotate-secret), and never again: the table keeps only its SHA-256.

use std::time::Duration;

use accounts::model::registry::{
    ClientId, ClientRecord, ClientSpec, ClientType, GrantType, parse_scopes, scope_text,
};
use accounts::store::ClientStore;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::context::Context;
use crate::exit;
use crate::failure::Failure;
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its client_id and, this once, its secret.
    Create(CreateArgs),
    /// Every client.
    List,
    /// Show one client (never its secrets).
    Get {
        /// The client_id.
        id: String,
    },
    /// Change a client; what is not given stays.
    Update {
        /// The client_id.
        id: String,
        #[command(flatten)]
        changes: ChangeArgs,
    },
    /// A new secret, printed this once; the old one keeps working for
    /// --old-secret-valid-for (default: it stops now).
    RotateSecret {
        /// The client_id.
        id: String,
        /// How long the old secret keeps working, e.g. 24h, 30m, 7d (at most 30d).
        #[arg(long, value_parser = grace)]
        old_secret_valid_for: Option<Duration>,
    },
    /// Refuse the client's secrets and, with session checks, its live tokens.
    Disable {
        /// The client_id.
        id: String,
    },
    /// Accept the client again.
    Enable {
        /// The client_id.
        id: String,
    },
    /// Delete a client; its tokens are refused by the session-checking authorizer.
    Delete {
        /// The client_id.
        id: String,
        /// Confirm: deleting cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name for people: the service, job or partner.
    #[arg(long)]
    pub name: String,
    /// The scopes it may ask for, space-separated ("orders:read orders:write").
    #[arg(long, default_value = "")]
    pub scopes: String,
    /// confidential (keeps a secret: services, servers) or public (apps that cannot).
    #[arg(long = "type", default_value = "confidential", value_parser = client_type)]
    pub client_type: ClientType,
    /// The grants it may use, comma-separated (default client_credentials).
    #[arg(long, value_delimiter = ',', value_parser = grant_type)]
    pub grant_types: Vec<GrantType>,
    /// A redirect URI for the code flow, matched exactly (repeat for more).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// A URI to return to after logout, matched exactly (repeat for more).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// The operator's own app: its users are not asked for consent.
    #[arg(long)]
    pub first_party: bool,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[arg(long)]
    pub name: Option<String>,
    /// The scopes, replacing the list ("" for none).
    #[arg(long)]
    pub scopes: Option<String>,
    /// The grants, comma-separated, replacing the list.
    #[arg(long, value_delimiter = ',', value_parser = grant_type)]
    pub grant_types: Option<Vec<GrantType>>,
    /// Redirect URIs, replacing the list (repeat for more).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Option<Vec<String>>,
    /// Remove every redirect URI.
    #[arg(long, conflicts_with = "redirect_uris")]
    pub no_redirect_uris: bool,
    /// Post-logout redirect URIs, replacing the list (repeat for more).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Remove every post-logout redirect URI.
    #[arg(long, conflicts_with = "post_logout_redirect_uris")]
    pub no_post_logout_redirect_uris: bool,
    /// true or false.
    #[arg(long)]
    pub first_party: Option<bool>,
}

fn client_type(text: &str) -> Result<ClientType, String> {
    ClientType::parse(text).ok_or_else(|| "confidential or public".to_owned())
}

fn grant_type(text: &str) -> Result<GrantType, String> {
    GrantType::parse(text.trim()).ok_or_else(|| {
        format!(
            "one of {}",
            GrantType::ALL.map(GrantType::as_str).join(", ")
        )
    })
}

/// The longest grace period of an old secret.
const MAX_GRACE: Duration = Duration::from_secs(30 * 86_400);

/// `24h`, `30m`, `90s`, `7d`.
fn grace(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("a number with a unit: s, m, h or d (e.g. 24h)")?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| "a number with a unit: s, m, h or d (e.g. 24h)")?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => None,
    }
    .ok_or("a number with a unit: s, m, h or d (e.g. 24h)")?;
    let duration = Duration::from_secs(seconds);
    if duration > MAX_GRACE {
        return Err("at most 30d".into());
    }
    Ok(duration)
}

fn usage(problem: String) -> Failure {
    Failure::new(exit::USAGE, problem)
}

fn scopes(text: &str) -> Result<Vec<accounts::model::registry::Scope>, Failure> {
    parse_scopes(text).map_err(usage)
}

fn rfc3339_ms(ms: i64) -> String {
    accounts::model::session::rfc3339_seconds(ms).unwrap_or_default()
}

/// A client as shown: everything but its secrets' hashes.
pub fn client_json(client: &ClientRecord) -> Value {
    let secrets: Vec<Value> = client
        .secrets
        .iter()
        .map(|s| {
            json!({
                "created_at": rfc3339_ms(s.created_at_ms),
                "expires_at": s.expires_at_ms.map(rfc3339_ms),
            })
        })
        .collect();
    json!({
        "client_id": client.client_id.as_str(),
        "name": client.name,
        "type": client.client_type.as_str(),
        "scopes": client.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "first_party": client.first_party,
        "disabled": client.disabled,
        "secrets": secrets,
        "created_at": rfc3339_ms(client.created_at_ms),
        "created_by": client.created_by,
        "updated_at": rfc3339_ms(client.updated_at_ms),
        "updated_by": client.updated_by,
    })
}

fn details(client: &ClientRecord) -> String {
    let value = client_json(client);
    let mut text = String::new();
    if let Value::Object(fields) = value {
        for (key, v) in fields {
            let shown = match v {
                Value::String(s) => s,
                Value::Null => "-".into(),
                Value::Array(items) if items.is_empty() => "-".into(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            text.push_str(&format!("{key}: {shown}\n"));
        }
    }
    text
}

const HEADERS: [&str; 6] = [
    "client_id",
    "name",
    "type",
    "scopes",
    "grant_types",
    "state",
];

fn row(client: &ClientRecord) -> Vec<String> {
    vec![
        client.client_id.to_string(),
        client.name.clone(),
        client.client_type.as_str().to_owned(),
        scope_text(&client.scopes),
        client
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(","),
        if client.disabled {
            "disabled"
        } else {
            "enabled"
        }
        .to_owned(),
    ]
}

async fn client(ctx: &mut Context<'_>, id: &str) -> Result<ClientRecord, Failure> {
    let parsed = ClientId::parse(id)
        .ok_or_else(|| Failure::new(exit::NOT_FOUND, format!("no client {id:?}")))?;
    ctx.store
        .find_client(&parsed)
        .await?
        .ok_or_else(|| Failure::new(exit::NOT_FOUND, format!("no client {parsed}")))
}

/// What a change did, for the audit record: never a secret.
fn describe(before: Option<&ClientRecord>, after: &ClientRecord) -> String {
    let mut parts = Vec::new();
    let changed = |name: &str, a: String, b: String, parts: &mut Vec<String>| {
        if a != b {
            parts.push(format!("{name} {a:?} -> {b:?}"));
        }
    };
    let lists = |c: &ClientRecord| {
        (
            scope_text(&c.scopes),
            c.grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(","),
            c.redirect_uris.join(" "),
            c.post_logout_redirect_uris.join(" "),
        )
    };
    let empty = ClientRecord {
        name: String::new(),
        scopes: Vec::new(),
        grant_types: Vec::new(),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        first_party: false,
        disabled: false,
        ..after.clone()
    };
    let before = before.unwrap_or(&empty);
    changed("name", before.name.clone(), after.name.clone(), &mut parts);
    let (a, b) = (lists(before), lists(after));
    changed("scopes", a.0, b.0, &mut parts);
    changed("grant_types", a.1, b.1, &mut parts);
    changed("redirect_uris", a.2, b.2, &mut parts);
    changed("post_logout_redirect_uris", a.3, b.3, &mut parts);
    changed(
        "first_party",
        before.first_party.to_string(),
        after.first_party.to_string(),
        &mut parts,
    );
    if parts.is_empty() {
        "no change".to_owned()
    } else {
        parts.join("; ")
    }
}

pub async fn clients(ctx: &mut Context<'_>, command: ClientsCommand) -> Result<(), Failure> {
    let now_ms = shared::token::now_unix_ms();
    match command {
        ClientsCommand::Create(args) => {
            let spec = ClientSpec {
                name: Some(args.name),
                client_type: Some(args.client_type),
                scopes: Some(scopes(&args.scopes)?),
                grant_types: (!args.grant_types.is_empty()).then_some(args.grant_types),
                redirect_uris: Some(args.redirect_uris),
                post_logout_redirect_uris: Some(args.post_logout_redirect_uris),
                first_party: Some(args.first_party),
            };
            let operator = ctx.operator().await?;
            let (client, secret) = ClientRecord::create(spec, &operator, now_ms).map_err(usage)?;
            let detail = describe(None, &client);
            ctx.intend("clients_create", &client.client_id, detail.clone())
                .await?;
            let result = ctx
                .store
                .create_client(&client)
                .await
                .map(|()| ((), detail))
                .map_err(Failure::from);
            ctx.conclude("clients_create", &client.client_id, result)
                .await?;
            let mut value = client_json(&client);
            let mut text = details(&client);
            if let Some(secret) = &secret {
                let shown = secret.encode();
                value["client_secret"] = json!(shown.expose_secret());
                text.push_str(&format!(
                    "client_secret: {}\n\nThe secret is shown this once: store it now (the table \
                     keeps only its hash).\n",
                    shown.expose_secret()
                ));
            }
            ctx.print(value, &text)
        }
        ClientsCommand::List => {
            let clients = ctx.store.list_clients().await?;
            match ctx.format {
                Format::Json => {
                    ctx.print_json(&json!(clients.iter().map(client_json).collect::<Vec<_>>()))
                }
                Format::Table => {
                    let rows: Vec<Vec<String>> = clients.iter().map(row).collect();
                    Ok(output::table(ctx.out, &HEADERS, &rows)?)
                }
            }
        }
        ClientsCommand::Get { id } => {
            let client = client(ctx, &id).await?;
            ctx.print(client_json(&client), &details(&client))
        }
        ClientsCommand::Update { id, changes } => {
            let before = client(ctx, &id).await?;
            let spec = ClientSpec {
                name: changes.name,
                client_type: None,
                scopes: changes.scopes.as_deref().map(scopes).transpose()?,
                grant_types: changes.grant_types,
                redirect_uris: if changes.no_redirect_uris {
                    Some(Vec::new())
                } else {
                    changes.redirect_uris
                },
                post_logout_redirect_uris: if changes.no_post_logout_redirect_uris {
                    Some(Vec::new())
                } else {
                    changes.post_logout_redirect_uris
                },
                first_party: changes.first_party,
            };
            let operator = ctx.operator().await?;
            let after = before.updated(spec, &operator, now_ms).map_err(usage)?;
            save(ctx, "clients_update", &before, &after).await?;
            ctx.print(client_json(&after), &details(&after))
        }
        ClientsCommand::RotateSecret {
            id,
            old_secret_valid_for,
        } => {
            let before = client(ctx, &id).await?;
            let operator = ctx.operator().await?;
            let until = old_secret_valid_for
                .map(|d| now_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
            let (after, secret) = before.rotated(until, &operator, now_ms).map_err(usage)?;
            let detail = match until {
                Some(end) => format!("new secret; the old one works until {}", rfc3339_ms(end)),
                None => "new secret; the old one stops now".to_owned(),
            };
            ctx.intend("clients_rotate_secret", &after.client_id, detail.clone())
                .await?;
            let result = ctx
                .store
                .save_client(&after)
                .await
                .map(|()| ((), detail.clone()))
                .map_err(Failure::from);
            ctx.conclude("clients_rotate_secret", &after.client_id, result)
                .await?;
            let shown = secret.encode();
            let mut value = client_json(&after);
            value["client_secret"] = json!(shown.expose_secret());
            let text = format!(
                "{}: {detail}\nclient_secret: {}\n\nThe secret is shown this once: store it now.\n",
                after.client_id,
                shown.expose_secret()
            );
            ctx.print(value, &text)
        }
        ClientsCommand::Disable { id } => set_disabled(ctx, &id, true, now_ms).await,
        ClientsCommand::Enable { id } => set_disabled(ctx, &id, false, now_ms).await,
        ClientsCommand::Delete { id, yes } => {
            if !yes {
                return Err(usage(
                    "deleting cannot be undone: add --yes to delete the client".into(),
                ));
            }
            let client = client(ctx, &id).await?;
            ctx.intend(
                "clients_delete",
                &client.client_id,
                "delete the client".into(),
            )
            .await?;
            let result = match ctx.store.delete_client(&client.client_id).await {
                Ok(true) => Ok(((), "client deleted".to_owned())),
                Ok(false) => Err(Failure::new(exit::NOT_FOUND, "the client is gone")),
                Err(err) => Err(err.into()),
            };
            ctx.conclude("clients_delete", &client.client_id, result)
                .await?;
            ctx.print(
                json!({"client_id": client.client_id.as_str(), "deleted": true}),
                &format!("{}: deleted", client.client_id),
            )
        }
    }
}

async fn save(
    ctx: &mut Context<'_>,
    action: &str,
    before: &ClientRecord,
    after: &ClientRecord,
) -> Result<(), Failure> {
    let detail = describe(Some(before), after);
    ctx.intend(action, &after.client_id, detail.clone()).await?;
    let result = ctx
        .store
        .save_client(after)
        .await
        .map(|()| ((), detail))
        .map_err(Failure::from);
    ctx.conclude(action, &after.client_id, result).await
}

async fn set_disabled(
    ctx: &mut Context<'_>,
    id: &str,
    disabled: bool,
    now_ms: i64,
) -> Result<(), Failure> {
    let before = client(ctx, id).await?;
    let operator = ctx.operator().await?;
    let after = before.with_disabled(disabled, &operator, now_ms);
    let action = if disabled {
        "clients_disable"
    } else {
        "clients_enable"
    };
    let detail = action.replace('_', " ");
    ctx.intend(action, &after.client_id, detail.clone()).await?;
    let result = ctx
        .store
        .save_client(&after)
        .await
        .map(|()| ((), detail))
        .map_err(Failure::from);
    ctx.conclude(action, &after.client_id, result).await?;
    let text = format!(
        "{}: {}",
        after.client_id,
        if disabled { "disabled" } else { "enabled" }
    );
    ctx.print(
        json!({"client_id": after.client_id.as_str(), "disabled": disabled}),
        &text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_read_like_people_write_them() {
        assert_eq!(grace("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(grace("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(grace("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(grace("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in ["", "h", "24", "24x", "-1h", "31d", "99999999999999999999d"] {
            assert!(grace(bad).is_err(), "{bad:?}");
        }
    }
}
