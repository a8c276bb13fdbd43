use accounts::flows::Accounts;
use accounts::mail::{MailDelivery, SesMailer};
use accounts::passwords::Passwords;
use accounts::store::DynamoStore;
use auth_api::App;
use auth_api::config;
use auth_api::http::lambda::Sanitized;
use lambda_http::{Adapter, Error, service_fn};
use shared::config::ProcessEnv;
use shared::init::or_report;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    shared::metrics::enable(
        shared::config::optional(&ProcessEnv, "METRICS_NAMESPACE"),
        "auth-api",
    );
    let sdk = or_report(accounts::aws::from_env(&ProcessEnv))?;
    let config = or_report(config::load(&ProcessEnv, &sdk).await)?;
    let app = App {
        accounts: Accounts {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.users_table),
            issuer: config.issuer,
            passwords: or_report(Passwords::new(config.bcrypt_cost))?,
            sessions: config.sessions,
            clock: std::sync::Arc::new(shared::SystemClock),
            recovery: accounts::recovery::Recovery {
                mail: match config.ses_from_address {
                    Some(from) => MailDelivery::Ses(SesMailer::new(
                        aws_sdk_sesv2::Client::new(&sdk),
                        from.as_str(),
                    )),
                    None => MailDelivery::Disabled,
                },
                settings: config.recovery,
            },
            mfa_key: config.mfa_key,
            client_token_ttl_seconds: config.client_token_ttl_seconds,
            passkeys: config.passkeys,
            hooks: or_report(auth_api::hooks::with_transports(config.hooks, Some(&sdk)))?,
            federation: or_report(auth_api::federation::with_upstream(config.federation))?,
        },
        verifier: config.verifier,
        browser: config.browser,
        published_scopes: config.published_scopes,
        pages: config.pages,
    };
    let app = &app;
    let handler =
        service_fn(
            move |req| async move { Ok::<_, std::convert::Infallible>(app.handle(req).await) },
        );
    lambda_http::lambda_runtime::run(Sanitized(Adapter::from(handler))).await
}
