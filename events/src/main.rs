use events::Delivery;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::config::ProcessEnv;
use shared::init::or_report;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let delivery = or_report(Delivery::from_env(&ProcessEnv).await)?;
    let delivery = &delivery;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(delivery.handle(&event.payload).await)
    }))
    .await
}
