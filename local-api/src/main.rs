use std::path::PathBuf;
use std::sync::Arc;

use auth_api::sdk;
use auth_api::store::DynamoStore;
use local_api::{LocalConfig, LocalStore, serve, template};
use shared::config::{Env, ProcessEnv};
use tokio::net::TcpListener;

const USAGE: &str = "usage: local-api [--host HOST] [--port PORT] [--template PATH]

Runs auth-api and the authorizer behind a local API Gateway (REST) front.
Defaults: 127.0.0.1:3000, template.yaml of this repository, in-memory users,
an ephemeral Ed25519 key. Set USERS_TABLE (and AWS_ENDPOINT_URL_DYNAMODB) for DynamoDB.";

struct Args {
    host: String,
    port: u16,
    template: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 3000,
        template: default_template(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = value()?,
            "--port" => {
                args.port = value()?
                    .parse()
                    .map_err(|_| "--port must be a port number")?
            }
            "--template" => args.template = PathBuf::from(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn default_template() -> PathBuf {
    let here = PathBuf::from("template.yaml");
    if here.is_file() {
        here
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
    }
}

fn is_loopback_endpoint(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

/// The SDK's whole provider chain (environment, profiles, SSO, …), so a developer's own
/// credentials reach a real table, with the Lambda's timeouts and retries.
async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sdk::https_client())
        .timeout_config(sdk::timeouts())
        .retry_config(sdk::retries())
        .load()
        .await
}

async fn store(env: &dyn Env) -> Result<(LocalStore, String), Box<dyn std::error::Error>> {
    let Some(table) = shared::config::optional(env, "USERS_TABLE") else {
        return Ok((
            LocalStore::Memory(Box::default()),
            "in-memory (lost on exit)".into(),
        ));
    };
    let endpoint = shared::config::optional(env, "AWS_ENDPOINT_URL_DYNAMODB")
        .or_else(|| shared::config::optional(env, "AWS_ENDPOINT_URL"));
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk_config().await), &table);
    if endpoint.as_deref().is_some_and(is_loopback_endpoint) {
        store.ensure_table().await?;
    }
    let at = endpoint.unwrap_or_else(|| "AWS".into());
    Ok((
        LocalStore::Dynamo(store),
        format!("DynamoDB table {table} at {at}"),
    ))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The Lambdas' own log setup: RUST_LOG as usual (default INFO), and no crate but ours at
    // TRACE, where the runtime, the AWS SDK and the HTTP stack print events and bodies.
    shared::logging::init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.to_string().is_empty() => {
            println!("{USAGE}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("local-api: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| {
        if e.is_empty() {
            e
        } else {
            format!("{e}\n{USAGE}")
        }
    })?;
    let text = std::fs::read_to_string(&args.template)
        .map_err(|e| format!("cannot read {}: {e}", args.template.display()))?;
    let spec = template::parse(&text)?;
    let config = LocalConfig::from_env(&ProcessEnv, &spec)?;
    let (store, store_name) = store(&ProcessEnv).await?;
    let routes = spec.routes.clone();
    let ttl = spec.authorizer_ttl;
    let gateway = Arc::new(config.gateway(spec, store)?);
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let url = format!("http://{}", listener.local_addr()?);

    println!("local-api listening on {url}");
    println!("  template   {}", args.template.display());
    println!("  users      {store_name}");
    println!(
        "  signing    {} key, kid {}{}",
        if config.key.is_symmetric() {
            "HS256"
        } else {
            "Ed25519"
        },
        config.key.kid(),
        if config.ephemeral_key {
            " (ephemeral: tokens die with this process)"
        } else {
            ""
        }
    );
    println!("  authorizer cache {ttl} s per token");
    for route in &routes {
        let access = if route.protected {
            "protected"
        } else {
            "public"
        };
        println!("  {:<6} {url}{:<10} {access}", route.method, route.path);
    }
    println!(
        "  GET    {url}{} local only (not in template.yaml): the mail local-api kept \
         instead of sending, newest last; each is also printed here",
        local_api::gateway::OUTBOX_PATH
    );
    println!(
        "\ntry:\n  curl -s -X POST {url}/register -H 'content-type: application/json' \\\n    -d '{{\"email\":\"ada@example.com\",\"password\":\"correct horse battery staple\"}}'\n"
    );

    serve(listener, gateway, async {
        let _ = tokio::signal::ctrl_c().await;
        println!("\nlocal-api: shutting down");
    })
    .await;
    Ok(())
}
