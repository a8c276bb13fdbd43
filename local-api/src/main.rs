use std::path::PathBuf;
use std::sync::Arc;

use accounts::aws;
use accounts::store::{DynamoStore, MemoryStore, Store};
use clap::Parser;
use local_api::hosts::LocalHosts;
use local_api::template::ApiKind;
use local_api::template::GatewaySpec;
use local_api::web::{self, WebRoot};
use local_api::{LocalConfig, serve, template};
use shared::config::ProcessEnv;
use tokio::net::TcpListener;

/// Runs auth-api and the authorizer behind a local API Gateway (REST) front, and the
/// example sign-in page (examples/web) on a second port, a different origin.
///
/// With --template template-http-api.yaml: an HTTP API whose built-in JWT authorizer (no
/// Lambda) checks RS256 tokens with keys fetched from local-api's own discovery document.
/// Defaults: in-memory users, an ephemeral Ed25519 key, refresh tokens in the body and in the
/// cookie, CORS for the page's origin, session checks in the authorizer. Set USERS_TABLE (and
/// AWS_ENDPOINT_URL_DYNAMODB) for DynamoDB, CORS_ALLOWED_ORIGINS and REFRESH_TOKEN_TRANSPORT
/// to change the browser settings, AUTHORIZER_CHECK_SESSION=false for the stateless
/// authorizer (docs/configuration.md lists every variable).
#[derive(Debug, Parser)]
#[command(name = "local-api", version)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The API's port (0: any free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// The SAM template whose routes and protection the gateway follows (default: this
    /// repository's template.yaml).
    #[arg(long)]
    template: Option<PathBuf>,
    /// The example page's folder (default: examples/web).
    #[arg(long, conflicts_with = "no_web")]
    web: Option<PathBuf>,
    /// The page's port (default: the API's port + 1).
    #[arg(long)]
    web_port: Option<u16>,
    /// Serve no page.
    #[arg(long)]
    no_web: bool,
    /// Register no development OAuth client.
    #[arg(long)]
    no_dev_client: bool,
}

fn default_template() -> PathBuf {
    let here = PathBuf::from("template.yaml");
    if here.is_file() {
        here
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
    }
}

fn default_web() -> Option<PathBuf> {
    [
        PathBuf::from("examples/web"),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/web")),
    ]
    .into_iter()
    .find(|dir| dir.join("index.html").is_file())
}

/// The origins a browser may show the page under: the host it is served on, and for
/// loopback both of its usual names.
fn page_origins(host: &str, port: u16) -> Vec<String> {
    let mut origins = vec![format!("http://{host}:{port}")];
    match host {
        "127.0.0.1" => origins.push(format!("http://localhost:{port}")),
        "localhost" => origins.push(format!("http://127.0.0.1:{port}")),
        _ => {}
    }
    origins
}

fn is_loopback_endpoint(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

/// The SDK's whole provider chain (environment, profiles, SSO, …), so a developer's own
/// credentials reach a real table, with the Lambda's timeouts and retries.
async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws::https_client())
        .timeout_config(aws::timeouts())
        .retry_config(aws::retries())
        .load()
        .await
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The Lambdas' own log setup: RUST_LOG as usual (default INFO), and no crate but ours at
    // TRACE, where the runtime, the AWS SDK and the HTTP stack print events and bodies.
    shared::logging::init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-api: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let template = args.template.clone().unwrap_or_else(default_template);
    let text = std::fs::read_to_string(&template)
        .map_err(|e| format!("cannot read {}: {e}", template.display()))?;
    let spec = template::parse(&text)?;
    let mut config = LocalConfig::from_env(&ProcessEnv, &spec)?;
    if config.hooks.any_lambda() {
        // Invoked through the SDK: AWS_ENDPOINT_URL_LAMBDA points them at a local emulator.
        let sdk = sdk_config().await;
        config.hooks = auth_api::hooks::with_transports(config.hooks, Some(&sdk))?;
    }
    let Some(table) = shared::config::optional(&ProcessEnv, "USERS_TABLE") else {
        let users = "in-memory (lost on exit)".to_owned();
        return start(args, template, spec, config, MemoryStore::new(), users).await;
    };
    let endpoint = shared::config::optional(&ProcessEnv, "AWS_ENDPOINT_URL_DYNAMODB")
        .or_else(|| shared::config::optional(&ProcessEnv, "AWS_ENDPOINT_URL"));
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk_config().await), &table);
    if endpoint.as_deref().is_some_and(is_loopback_endpoint) {
        store.ensure_table().await?;
    }
    let at = endpoint.unwrap_or_else(|| "AWS".into());
    let users = format!("DynamoDB table {table} at {at}");
    start(args, template, spec, config, store, users).await
}

/// Serves the gateway over `store` (and the page) until Ctrl-C.
async fn start<S: Store + 'static>(
    args: Args,
    template: PathBuf,
    spec: GatewaySpec,
    mut config: LocalConfig,
    store: S,
    store_name: String,
) -> Result<(), Box<dyn std::error::Error>> {
    let web_dir = match (&args.web, args.no_web) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => default_web(),
    };
    let routes = spec.routes.clone();
    let ttl = spec.authorizer_ttl;
    let spec_kind = spec.kind;
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let api_port = listener.local_addr()?.port();
    // On loopback the pages are served as localhost: browsers refuse an IP address as a
    // passkey's RP ID, and the hosted pages are at the issuer's origin.
    let loopback = matches!(args.host.as_str(), "127.0.0.1" | "localhost");
    let url = match loopback {
        true => format!("http://localhost:{api_port}"),
        false => format!("http://{}", listener.local_addr()?),
    };
    config.listening_at(&url);
    let web = match &web_dir {
        Some(dir) => {
            let port = args
                .web_port
                .unwrap_or(if args.port == 0 { 0 } else { api_port + 1 });
            let web_listener = TcpListener::bind((args.host.as_str(), port))
                .await
                .map_err(|e| {
                    format!(
                        "cannot listen on {}:{port} for the web page: {e} (--web-port, or --no-web)",
                        args.host
                    )
                })?;
            let port = web_listener.local_addr()?.port();
            config.allow_origins_if_unset(page_origins(&args.host, port));
            // localhost: a name the page answers under whatever --host is.
            config.link_to_page_if_unset(&ProcessEnv, &format!("http://localhost:{port}"));
            Some((web_listener, dir.clone(), port))
        }
        None => None,
    };
    if loopback {
        let mut origins = vec![url.clone()];
        if let Some((_, _, port)) = &web {
            origins.push(format!("http://localhost:{port}"));
        }
        config.passkeys_on_localhost(origins)?;
    }
    let dev_scopes = local_api::dev_client::scopes_from_env(&ProcessEnv)?;
    let mut gateway = config.gateway(spec, store)?;
    gateway.set_local_hosts(LocalHosts::new(&args.host));
    let gateway = Arc::new(gateway);
    let webhooks = local_api::events::webhooks_from_env(&ProcessEnv)?;

    println!("local-api listening on {url}");
    println!("  template   {}", template.display());
    println!("  users      {store_name}");
    match &webhooks {
        Some(hooks) => println!(
            "  events     {url}/_local/events, and to {} (signed)",
            hooks.urls.join(" ")
        ),
        None => println!("  events     {url}/_local/events (WEBHOOK_URLS: none)"),
    }
    println!("  issuer     {}", config.settings.issuer);
    println!(
        "  signing    {:?} key, kid {}{}",
        config.key.algorithm(),
        config.key.kid(),
        if config.ephemeral_key {
            " (ephemeral: tokens die with this process)"
        } else {
            ""
        }
    );
    println!(
        "  mfa        TOTP secrets sealed with {}",
        if config.ephemeral_mfa_key {
            "a key generated for this run (set MFA_ENCRYPTION_KEY to keep enrollments)"
        } else {
            "MFA_ENCRYPTION_KEY"
        }
    );
    match &config.passkeys {
        Some(passkeys) => println!(
            "  passkeys   RP ID {}, pages at {} (WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS to change)",
            passkeys.rp.id(),
            passkeys.rp.origins().join(", ")
        ),
        None => println!(
            "  passkeys   off: set WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS for --host {}",
            args.host
        ),
    }
    match (spec_kind, config.session_check.enabled) {
        (ApiKind::Http, _) => println!(
            "  authorizer API Gateway's built-in JWT authorizer (HTTP API): RS256 only, keys \
             from {}/.well-known/openid-configuration, audience {}; no Lambda, so no session \
             checks (tokens live until exp)",
            config.settings.issuer, config.settings.audience
        ),
        (ApiKind::Rest, true) => {
            println!("  authorizer cache {ttl} s per token");
            println!(
                "  sessions   checked by the authorizer (answers kept {} s): a revoked session \
                 is refused at the gateway",
                config.session_check.cache_seconds
            );
        }
        (ApiKind::Rest, false) => {
            println!("  authorizer cache {ttl} s per token");
            println!("  sessions   not checked by the authorizer (tokens live until exp)");
        }
    }
    println!(
        "  browsers   refresh token in {}; CORS for {}",
        match config.browser.transport.as_str() {
            "body" => "the JSON body",
            "cookie" => "the __Host-refresh_token cookie",
            _ => "the body and the __Host-refresh_token cookie",
        },
        match config.browser.allowed_origins.to_setting() {
            origins if origins.is_empty() => "no origin".to_owned(),
            origins => origins,
        }
    );
    for route in routes.iter().filter(|r| r.method != "OPTIONS") {
        let access = if route.protected {
            "protected"
        } else {
            "public"
        };
        println!("  {:<6} {url}{:<10} {access}", route.method, route.path);
    }
    let preflights = routes.iter().filter(|r| r.method == "OPTIONS").count();
    println!("  OPTIONS on {preflights} of them: CORS preflights, answered by auth-api");
    println!(
        "  GET    {url}{} local only (not in template.yaml): the mail local-api kept \
         instead of sending, newest last; each is also printed here",
        local_api::gateway::OUTBOX_PATH
    );
    if let Some((_, dir, port)) = &web {
        println!(
            "  web page   http://{}:{port}/ (examples sign-in page from {})",
            if loopback {
                "localhost"
            } else {
                args.host.as_str()
            },
            dir.display()
        );
    }
    if !args.no_dev_client {
        let (client, secret) = local_api::dev_client::register(
            &gateway.app().accounts.store,
            dev_scopes,
            shared::token::now_unix_ms(),
        )
        .await
        .map_err(|e| format!("cannot register the development client: {e}"))?;
        let secret = secret.encode();
        println!(
            "  dev client {} (client_credentials, scopes {}; --no-dev-client: none)\n  \
             secret     {}\n  get a token:\n    curl -s -u '{}:{}' -d grant_type=client_credentials \
             {url}/oauth2/token",
            client.client_id,
            accounts::model::registry::scope_text(&client.scopes),
            secrecy::ExposeSecret::expose_secret(&secret),
            client.client_id,
            secrecy::ExposeSecret::expose_secret(&secret),
        );
    }
    let mut spa = None;
    if !args.no_dev_client {
        let mut redirects = vec![local_api::dev_client::LOOPBACK_REDIRECT.to_owned()];
        let mut after_logout = Vec::new();
        if let Some((_, _, port)) = &web {
            redirects.push(format!("http://localhost:{port}/spa/callback.html"));
            after_logout.push(format!("http://localhost:{port}/spa/"));
        }
        let app = local_api::dev_client::register_app(
            &gateway.app().accounts.store,
            redirects,
            after_logout,
            local_api::dev_client::scopes_from_env(&ProcessEnv)?,
            shared::token::now_unix_ms(),
        )
        .await
        .map_err(|e| format!("cannot register the development app: {e}"))?;
        if let Some((_, dir, port)) = &web
            && let Some(spa_dir) = dir.parent().map(|p| p.join("spa")).filter(|d| d.is_dir())
        {
            println!(
                "  spa        http://localhost:{port}/spa/ (examples single-page app, \
                 oidc-client-ts, from {})",
                spa_dir.display()
            );
            spa = Some(local_api::web::Spa {
                dir: spa_dir,
                authority: config.settings.issuer.clone(),
                client_id: app.client_id.to_string(),
            });
        }
        println!(
            "  dev app    {} (public, first party: authorization_code with PKCE S256, \
             refresh_token, device_code)\n  redirects  {}\n  sign in:   {url}/oauth2/authorize?response_type=code&client_id={}&...\n  \
             a CLI:     examples/cli/device-login {url} {}",
            app.client_id,
            app.redirect_uris.join(" "),
            app.client_id,
            app.client_id,
        );
    }
    println!(
        "\ntry:\n  curl -s -X POST {url}/register -H 'content-type: application/json' \\\n    -d '{{\"email\":\"ada@example.com\",\"password\":\"correct horse battery staple\"}}'\n"
    );

    let (stop_web, web_stopped) = tokio::sync::oneshot::channel::<()>();
    let web_task = web.map(|(web_listener, dir, _)| {
        let root = Arc::new(WebRoot {
            dir,
            api_port,
            hosts: LocalHosts::new(&args.host),
            spa,
        });
        tokio::spawn(web::serve(web_listener, root, async {
            let _ = web_stopped.await;
        }))
    });
    let events_task = local_api::events::spawn(gateway.clone(), webhooks);
    serve(listener, gateway, async {
        let _ = tokio::signal::ctrl_c().await;
        println!("\nlocal-api: shutting down");
    })
    .await;
    events_task.abort();
    let _ = stop_web.send(());
    if let Some(task) = web_task {
        let _ = task.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    #[test]
    fn the_arguments_are_checked_and_version_and_help_answer() {
        let kind = |args: &[&str]| Args::try_parse_from(args).err().map(|e| e.kind());
        assert_eq!(
            kind(&["local-api", "--version"]),
            Some(ErrorKind::DisplayVersion)
        );
        assert_eq!(kind(&["local-api", "--help"]), Some(ErrorKind::DisplayHelp));
        assert_eq!(
            kind(&["local-api", "--bogus"]),
            Some(ErrorKind::UnknownArgument)
        );
        assert_eq!(
            kind(&["local-api", "--port", "x"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(
            kind(&["local-api", "--web", "d", "--no-web"]),
            Some(ErrorKind::ArgumentConflict)
        );
        let args = Args::try_parse_from(["local-api", "--port", "0", "--no-web"]).unwrap();
        assert_eq!(
            (args.host.as_str(), args.port, args.no_web),
            ("127.0.0.1", 0, true)
        );
    }
}
