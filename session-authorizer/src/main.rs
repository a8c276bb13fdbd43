use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use session_authorizer::SessionAuthorizer;
use shared::config::ProcessEnv;
use shared::init::or_report;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    shared::metrics::enable(
        shared::config::optional(&ProcessEnv, "METRICS_NAMESPACE"),
        "authorizer",
    );
    let authorizer = or_report(SessionAuthorizer::from_env(&ProcessEnv))?;
    let authorizer = &authorizer;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        authorizer.handle(event).await
    }))
    .await
}
