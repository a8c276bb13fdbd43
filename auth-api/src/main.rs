use auth_api::App;
use auth_api::config::Config;
use auth_api::passwords::Passwords;
use auth_api::store::DynamoStore;
use auth_api::store::dynamo::load_sdk_config;
use lambda_http::{Error, run, service_fn};
use shared::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env(&ProcessEnv).inspect_err(|e| tracing::error!("{e}"))?;
    let client = aws_sdk_dynamodb::Client::new(&load_sdk_config().await);
    let app = App {
        store: DynamoStore::new(client, config.users_table),
        issuer: config.issuer,
        verifier: config.verifier,
        passwords: Passwords::new(config.bcrypt_cost)?,
    };
    let app = &app;
    run(service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(app.handle(req).await)
    }))
    .await
}
