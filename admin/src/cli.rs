//! The command line: arguments, the AWS clients, the operator's identity, and each command.

use std::ffi::OsString;
use std::io::Write;

use accounts::store::{
    AccountStore, AdminStore, DynamoStore, FederationStore, MfaStore, SessionStore,
};
use clap::{Parser, Subcommand};
use serde_json::json;
use uuid::Uuid;

use crate::context::Context;
use crate::exit;
use crate::failure::Failure;
use crate::import::ImportArgs;
use crate::output::{self, Format};

/// Operate a deployed users table: users, sessions, and the import of the Node.js original's
/// users. Uses your usual AWS credentials (environment, profile, SSO…); every change is
/// recorded with your AWS identity.
#[derive(Debug, Parser)]
#[command(name = "auth-admin", version, propagate_version = true)]
pub struct Cli {
    /// The users table (the stack's UsersTableName output).
    #[arg(long, env = "USERS_TABLE", global = true)]
    pub table: Option<String>,
    /// The AWS region (default: your profile's or AWS_REGION).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Another DynamoDB endpoint, e.g. http://127.0.0.1:8000 for DynamoDB Local.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// How results are printed.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub output: Format,
    /// Print JSON (the same as --output json).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read and change user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List and end a user's sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// The OAuth client registry: machine clients and their secrets.
    #[command(subcommand)]
    Clients(crate::clients::ClientsCommand),
    /// Bring users over from the Node.js login Lambda this project replaces.
    Import(ImportArgs),
    /// Signing keys for rotation, and the PublicJwks value (no table needed).
    #[command(subcommand)]
    Keys(crate::keys::KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Show one user.
    Get {
        /// The user's email.
        email: String,
    },
    /// List every user (a paginated scan; progress on stderr).
    List {
        /// Users read per request.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        page_size: u16,
    },
    /// Replace a user's roles. Access tokens carry the new roles from their next refresh.
    SetRoles {
        /// The user's email.
        email: String,
        /// The roles, e.g. `user admin` (letters, digits, `_ . : -`; at most 20).
        #[arg(required = true, num_args = 1..)]
        roles: Vec<String>,
    },
    /// Disable a user: no login, refresh or account route works, and every session ends now.
    Disable {
        /// The user's email.
        email: String,
    },
    /// Enable a disabled user again (they sign in anew).
    Enable {
        /// The user's email.
        email: String,
    },
    /// Turn a user's two-factor sign-in off (their authenticator and recovery codes are
    /// lost): the secret and codes are deleted and every session ends; they sign in with
    /// the password alone and may enroll again.
    MfaReset {
        /// The user's email.
        email: String,
    },
    /// A user's accounts at other identity providers (sign-in through them).
    Identities {
        /// The user's email.
        email: String,
    },
    /// Delete a user with their sessions and tokens; the email can register again.
    Delete {
        /// The user's email.
        email: String,
        /// Confirm: deleting cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// A user's live sessions.
    List {
        /// The user's email.
        email: String,
    },
    /// End one session of a user, or all of them.
    Revoke {
        /// The user's email.
        email: String,
        /// The session id (see `sessions list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<Uuid>,
        /// Every session of the user.
        #[arg(long)]
        all: bool,
    },
}

/// Runs the command line `args` (the program name first); returns the exit code.
pub async fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let text = e.render().to_string();
            let _ = if code == 0 {
                out.write_all(text.as_bytes())
            } else {
                err.write_all(text.as_bytes())
            };
            return code;
        }
    };
    if cli.json {
        cli.output = Format::Json;
    }
    if let Command::Keys(command) = &cli.command {
        let (sdk, _) = clients(&cli).await;
        return match crate::keys::keys(command.clone(), &sdk, cli.output, out, err).await {
            Ok(()) => exit::OK,
            Err(failure) => {
                let _ = writeln!(err, "auth-admin: {}", output::clean(&failure.message));
                failure.code
            }
        };
    }
    let Some(table) = cli.table.clone().filter(|t| !t.trim().is_empty()) else {
        let _ = writeln!(
            err,
            "auth-admin: no table: pass --table NAME or set USERS_TABLE (the stack's \
             UsersTableName output)"
        );
        return exit::USAGE;
    };
    let (sdk, dynamo) = clients(&cli).await;
    let mut context = Context {
        store: DynamoStore::new(dynamo, table),
        sdk,
        format: cli.output,
        out,
        err,
        operator: None,
        local_endpoint: cli.endpoint_url.is_some(),
        sts_configured: std::env::var_os("AWS_ENDPOINT_URL_STS").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some(),
    };
    let result = match cli.command {
        Command::Users(command) => users(&mut context, command).await,
        Command::Sessions(command) => sessions(&mut context, command).await,
        Command::Clients(command) => crate::clients::clients(&mut context, command).await,
        Command::Import(args) => crate::import::import(&mut context, args).await,
        Command::Keys(_) => Ok(()),
    };
    match result {
        Ok(()) => exit::OK,
        Err(failure) => {
            let _ = writeln!(
                context.err,
                "auth-admin: {}",
                output::clean(&failure.message)
            );
            failure.code
        }
    }
}

/// The SDK configuration (the whole provider chain, the Lambdas' timeouts and retries,
/// `--region`) and the DynamoDB client, at `--endpoint-url` if given (STS keeps its own
/// endpoint: `AWS_ENDPOINT_URL_STS`, or AWS).
async fn clients(cli: &Cli) -> (aws_config::SdkConfig, aws_sdk_dynamodb::Client) {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(accounts::aws::https_client())
        .timeout_config(accounts::aws::timeouts())
        .retry_config(accounts::aws::retries());
    if let Some(region) = &cli.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    let mut dynamo = aws_sdk_dynamodb::config::Builder::from(&sdk);
    if let Some(url) = &cli.endpoint_url {
        dynamo = dynamo.endpoint_url(url);
    }
    let dynamo = aws_sdk_dynamodb::Client::from_conf(dynamo.build());
    (sdk, dynamo)
}

/// Role names: what access tokens and route rules carry (no spaces: `scope` joins them).
fn valid_roles(roles: &[String]) -> Result<Vec<String>, Failure> {
    let mut out: Vec<String> = Vec::new();
    for role in roles {
        let ok = (1..=64).contains(&role.len())
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if !ok {
            return Err(Failure::new(
                exit::USAGE,
                format!(
                    "role {role:?} is not valid: 1 to 64 letters, digits, '_', '.', ':' or '-'"
                ),
            ));
        }
        if !out.contains(role) {
            out.push(role.clone());
        }
    }
    if out.len() > 20 {
        return Err(Failure::new(exit::USAGE, "at most 20 roles"));
    }
    Ok(out)
}

async fn users(ctx: &mut Context<'_>, command: UsersCommand) -> Result<(), Failure> {
    match command {
        UsersCommand::Get { email } => {
            let user = ctx.user(&email).await?;
            match ctx.format {
                Format::Json => ctx.print_json(&output::user_json(&user)),
                Format::Table => Ok(output::user_details(ctx.out, &user)?),
            }
        }
        UsersCommand::List { page_size } => {
            let mut users = Vec::new();
            let mut start: Option<String> = None;
            loop {
                let page = ctx
                    .store
                    .list_users(start.as_deref(), usize::from(page_size))
                    .await?;
                users.extend(page.users);
                write!(ctx.err, "\rscanned: {} users", users.len())?;
                ctx.err.flush()?;
                match page.next {
                    Some(next) => start = Some(next),
                    None => break,
                }
            }
            writeln!(ctx.err)?;
            users.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
            match ctx.format {
                Format::Json => ctx.print_json(&json!(
                    users.iter().map(output::user_json).collect::<Vec<_>>()
                )),
                Format::Table => {
                    let rows: Vec<Vec<String>> = users.iter().map(output::user_row).collect();
                    Ok(output::table(ctx.out, &output::USER_HEADERS, &rows)?)
                }
            }
        }
        UsersCommand::SetRoles { email, roles } => {
            let roles = valid_roles(&roles)?;
            let user = ctx.user(&email).await?;
            let change = format!("roles {} -> {}", user.roles.join(","), roles.join(","));
            ctx.intend("users_set_roles", Some(&user), change.clone())
                .await?;
            let result = match ctx.store.set_roles(&user, &roles).await {
                Ok(true) => Ok(((), change)),
                Ok(false) => Err(Failure::new(exit::NOT_FOUND, "the user is gone")),
                Err(err) => Err(err.into()),
            };
            ctx.conclude("users_set_roles", Some(&user), result).await?;
            let text = format!(
                "{}: roles now {} (access tokens carry them from their next refresh)",
                user.email,
                roles.join(" ")
            );
            ctx.print(
                json!({"user_id": user.user_id.to_string(), "email": user.email.as_str(), "roles": roles}),
                &text,
            )
        }
        UsersCommand::Disable { email } => set_disabled(ctx, &email, true).await,
        UsersCommand::Enable { email } => set_disabled(ctx, &email, false).await,
        UsersCommand::Identities { email } => {
            let user = ctx.user(&email).await?;
            let identities = ctx.store.list_identities(user.user_id).await?;
            let time = |ms: i64| {
                accounts::model::session::rfc3339_seconds(ms).unwrap_or_else(|| ms.to_string())
            };
            match ctx.format {
                Format::Json => ctx.print_json(&json!(
                    identities
                        .iter()
                        .map(|i| json!({
                            "id": accounts::flows::federation::identity_id(i),
                            "provider": i.provider,
                            "subject": i.subject,
                            "email": i.email,
                            "linked_at": time(i.linked_at_ms),
                        }))
                        .collect::<Vec<_>>()
                )),
                Format::Table => {
                    let rows: Vec<Vec<String>> = identities
                        .iter()
                        .map(|i| {
                            vec![
                                i.provider.clone(),
                                i.subject.clone(),
                                i.email.clone().unwrap_or_default(),
                                time(i.linked_at_ms),
                            ]
                        })
                        .collect();
                    Ok(output::table(
                        ctx.out,
                        &["PROVIDER", "SUBJECT", "EMAIL", "LINKED"],
                        &rows,
                    )?)
                }
            }
        }
        UsersCommand::MfaReset { email } => {
            let user = ctx.user(&email).await?;
            let had = user.mfa.enabled() || user.mfa.pending.is_some();
            let off = accounts::model::mfa::MfaState {
                last_step: user.mfa.last_step,
                revision: user.mfa.revision,
                ..Default::default()
            };
            ctx.intend(
                "users_mfa_reset",
                Some(&user),
                "turn two-factor sign-in off and end every session".into(),
            )
            .await?;
            let store = &ctx.store;
            let result = async {
                store.save_mfa(&user, &off, None).await?;
                if !store.revoke_all_sessions(&user.email, user.user_id).await? {
                    return Err(Failure::new(exit::NOT_FOUND, "the user is gone"));
                }
                Ok(((), "two-factor sign-in off; every session ended".to_owned()))
            }
            .await;
            ctx.conclude("users_mfa_reset", Some(&user), result).await?;
            let text = if had {
                format!(
                    "{}: two-factor sign-in turned off (secret and recovery codes deleted); every \
                     session ended",
                    user.email
                )
            } else {
                format!(
                    "{}: had no two-factor sign-in; every session ended",
                    user.email
                )
            };
            ctx.print(
                json!({"user_id": user.user_id.to_string(), "email": user.email.as_str(), "mfa_enabled": false}),
                &text,
            )
        }
        UsersCommand::Delete { email, yes } => {
            if !yes {
                return Err(Failure::new(
                    exit::USAGE,
                    "deleting cannot be undone: add --yes to delete the user, their sessions \
                     and tokens",
                ));
            }
            let user = ctx.user(&email).await?;
            ctx.intend("users_delete", Some(&user), "delete the account".into())
                .await?;
            let result = ctx
                .store
                .delete_user(&user)
                .await
                .map(|()| ((), "account deleted".to_owned()))
                .map_err(Failure::from);
            ctx.conclude("users_delete", Some(&user), result).await?;
            let text = format!("{}: deleted (user id {})", user.email, user.user_id);
            ctx.print(
                json!({"user_id": user.user_id.to_string(), "email": user.email.as_str(), "deleted": true}),
                &text,
            )
        }
    }
}

async fn set_disabled(ctx: &mut Context<'_>, email: &str, disabled: bool) -> Result<(), Failure> {
    let user = ctx.user(email).await?;
    let (action, text) = if disabled {
        (
            "users_disable",
            format!("{}: disabled; every session ended", user.email),
        )
    } else {
        ("users_enable", format!("{}: enabled", user.email))
    };
    ctx.intend(action, Some(&user), action.replace('_', " "))
        .await?;
    let result = match ctx.store.set_disabled(&user, disabled).await {
        Ok(true) => Ok(((), text.clone())),
        Ok(false) => Err(Failure::new(exit::NOT_FOUND, "the user is gone")),
        Err(err) => Err(err.into()),
    };
    ctx.conclude(action, Some(&user), result).await?;
    ctx.print(
        json!({"user_id": user.user_id.to_string(), "email": user.email.as_str(), "disabled": disabled}),
        &text,
    )
}

async fn sessions(ctx: &mut Context<'_>, command: SessionsCommand) -> Result<(), Failure> {
    // The deployment's own session lifetimes when they are set here as for auth-api
    // (SESSION_MAX_LIFETIME_SECONDS, …), to judge which sessions are live.
    let settings = accounts::settings::sessions_from_env(&shared::config::ProcessEnv)
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    match command {
        SessionsCommand::List { email } => {
            let user = ctx.user(&email).await?;
            let now_ms = shared::token::now_unix_ms();
            let mut live: Vec<_> = ctx
                .store
                .list_sessions(user.user_id)
                .await?
                .into_iter()
                .filter(|f| f.is_live(&settings, user.session_epoch, now_ms))
                .collect();
            live.sort_by_key(|f| std::cmp::Reverse(f.created_at_ms));
            let ends = |f: &accounts::model::session::SessionFamily| f.ends_at(&settings);
            match ctx.format {
                Format::Json => ctx.print_json(&json!(
                    live.iter()
                        .map(|f| output::session_json(f, ends(f)))
                        .collect::<Vec<_>>()
                )),
                Format::Table => {
                    let rows: Vec<Vec<String>> = live
                        .iter()
                        .map(|f| output::session_row(f, ends(f)))
                        .collect();
                    Ok(output::table(ctx.out, &output::SESSION_HEADERS, &rows)?)
                }
            }
        }
        SessionsCommand::Revoke { email, id, all } => {
            let user = ctx.user(&email).await?;
            if all {
                ctx.intend(
                    "sessions_revoke_all",
                    Some(&user),
                    "end every session".into(),
                )
                .await?;
                let result = match ctx
                    .store
                    .revoke_all_sessions(&user.email, user.user_id)
                    .await
                {
                    Ok(true) => Ok(((), "every session ended".to_owned())),
                    Ok(false) => Err(Failure::new(exit::NOT_FOUND, "the user is gone")),
                    Err(err) => Err(err.into()),
                };
                ctx.conclude("sessions_revoke_all", Some(&user), result)
                    .await?;
                let text = format!("{}: every session ended", user.email);
                return ctx.print(
                    json!({"user_id": user.user_id.to_string(), "revoked": "all"}),
                    &text,
                );
            }
            let Some(id) = id else {
                return Err(Failure::new(exit::USAGE, "name a session id, or --all"));
            };
            let family = ctx
                .store
                .find_session(id)
                .await?
                .filter(|f| f.user_id == user.user_id)
                .ok_or_else(|| {
                    Failure::new(
                        exit::NOT_FOUND,
                        format!("{} has no session {id}", user.email),
                    )
                })?;
            ctx.intend("sessions_revoke", Some(&user), format!("end session {id}"))
                .await?;
            let result = ctx
                .store
                .revoke_family(
                    family.family_id,
                    family.user_id,
                    accounts::model::event::SessionEnd::Operator,
                )
                .await
                .map(|()| ((), format!("session {id} ended")))
                .map_err(Failure::from);
            ctx.conclude("sessions_revoke", Some(&user), result).await?;
            let text = format!("{}: session {id} ended", user.email);
            ctx.print(
                json!({"user_id": user.user_id.to_string(), "revoked": id.to_string()}),
                &text,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a local endpoint without STS, the operator is what the access key claims:
    /// recorded, but marked as not confirmed.
    #[tokio::test]
    async fn an_operator_not_confirmed_by_sts_is_marked_so() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk).build(),
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut ctx = Context {
            store: DynamoStore::new(dynamo, "t"),
            sdk,
            format: Format::Json,
            out: &mut out,
            err: &mut err,
            operator: None,
            local_endpoint: true,
            sts_configured: false,
        };
        let (operator, confirmed) = ctx.operator_identity().await.unwrap();
        assert!(!confirmed);
        assert!(
            operator.starts_with("unconfirmed: local (access key "),
            "{operator}"
        );
    }
}
