use authorizer::Authorizer;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::config::ProcessEnv;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let authorizer = Authorizer::from_env(&ProcessEnv).inspect_err(|e| tracing::error!("{e}"))?;
    let authorizer = &authorizer;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        authorizer.handle(event).await
    }))
    .await
}
