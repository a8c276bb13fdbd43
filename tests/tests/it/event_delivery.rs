//! The event delivery function against real counterparts: the events a user's requests wrote
//! to DynamoDB Local, handed over as the table's stream hands them (INSERTs of event items,
//! among other records), go to moto's EventBridge, whose rule puts them on an SQS queue that
//! the test reads back, and to a webhook that is down at first: the batch reports the first
//! event it could not deliver, the retry from there delivers everything, and after dropping
//! repeats by id every event has arrived once, in order, signed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use accounts::store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::app::{STRONG_PASSWORD, post, test_app};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::http_peer::{Received, read_request, respond, standard_webhooks_signed};
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn moto() -> String {
    std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_SSM"))
        .unwrap_or_else(|_| {
            panic!("AWS_ENDPOINT_URL_EVENTBRIDGE is not set: run `scripts/test`, which starts moto")
        })
}

/// An SQS call of moto's, in the JSON protocol.
async fn sqs(http: &reqwest::Client, operation: &str, body: Value) -> Value {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SQS").unwrap_or_else(|_| moto());
    let response = http
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AmazonSQS.{operation}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{operation}: {response:?}");
    response.json().await.unwrap()
}

/// The table's event items as a DynamoDB stream batch carries them, in their partitions'
/// order, with records the mapping's filter would drop mixed in (a user item's INSERT, a TTL
/// deletion), which the function must pass over.
async fn stream_batch(store: &DynamoStore) -> Vec<Value> {
    let items = store
        .client()
        .scan()
        .table_name(store.table())
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let image = |item: &HashMap<String, AttributeValue>| -> Value {
        let mut out = serde_json::Map::new();
        for (name, value) in item {
            let value = match value {
                AttributeValue::S(text) => json!({"S": text}),
                AttributeValue::N(number) => json!({"N": number}),
                AttributeValue::Bool(flag) => json!({"BOOL": flag}),
                _ => continue,
            };
            out.insert(name.clone(), value);
        }
        Value::Object(out)
    };
    let mut events: Vec<&HashMap<String, AttributeValue>> = items
        .iter()
        .filter(|i| {
            i.get("entity")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("event")
        })
        .collect();
    events.sort_by_key(|i| {
        (
            i["pk"].as_s().unwrap().clone(),
            i["sk"].as_s().unwrap().clone(),
        )
    });
    let user = items
        .iter()
        .find(|i| {
            i.get("entity")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("user")
        })
        .unwrap();
    let mut records = vec![json!({
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"SequenceNumber": "100", "NewImage": image(user)},
    })];
    for (i, item) in events.into_iter().enumerate() {
        records.push(json!({
            "eventID": format!("e{i}"),
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "SequenceNumber": format!("{}", 200 + i),
                "StreamViewType": "NEW_IMAGE",
                "Keys": {"pk": {"S": item["pk"].as_s().unwrap()}, "sk": {"S": item["sk"].as_s().unwrap()}},
                "NewImage": image(item),
            },
        }));
    }
    records.push(json!({
        "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"SequenceNumber": "900", "OldImage": image(user)},
    }));
    records
}

/// A webhook receiver: answers 503 while `down`, else 204; keeps every request it took.
struct Receiver {
    url: String,
    down: Arc<Mutex<bool>>,
    taken: Arc<Mutex<Vec<Received>>>,
}

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let down = Arc::new(Mutex::new(true));
    let taken = Arc::new(Mutex::new(Vec::new()));
    let (d, t) = (down.clone(), taken.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (down, taken) = (d.clone(), t.clone());
            tokio::spawn(async move {
                let Some((headers, body)) = read_request(&mut socket).await else {
                    return;
                };
                if *down.lock().unwrap() {
                    respond(&mut socket, "503 Service Unavailable", "").await;
                } else {
                    taken.lock().unwrap().push((headers, body));
                    respond(&mut socket, "204 No Content", "").await;
                }
            });
        }
    });
    Receiver { url, down, taken }
}

#[tokio::test]
async fn events_reach_eventbridge_and_signed_webhooks_once_in_order_after_an_outage() {
    // A user's requests write their events.
    let store = fresh_store(&endpoint()).await;
    let table = store.table().to_owned();
    let app = test_app(store);
    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    let user_id = post(&app, "/register", credentials.clone(), None)
        .await
        .json()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = post(&app, "/login", credentials, None).await.json();
    post(
        &app,
        "/logout",
        json!({"refresh_token": session["refresh_token"]}),
        None,
    )
    .await;
    let reader = accounts::store::DynamoStore::new(
        integration_tests::dynamo::client_as(&endpoint(), "tests"),
        table,
    );
    let batch = stream_batch(&reader).await;
    assert_eq!(batch.len(), 5, "a user item, three events, a deletion");

    // moto: a bus, a rule for this product's events, an SQS queue as its target; the
    // webhook secret in SSM.
    let sdk = accounts::aws::from_env(&shared::config::ProcessEnv).unwrap();
    let bridge = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk)
            .endpoint_url(moto())
            .build(),
    );
    let bus = format!("auth-events-{}", uuid::Uuid::new_v4().simple());
    bridge.create_event_bus().name(&bus).send().await.unwrap();
    let http = reqwest::Client::new();
    let queue_name = format!("events-{}", uuid::Uuid::new_v4().simple());
    let queue = sqs(&http, "CreateQueue", json!({"QueueName": queue_name})).await["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let arn = sqs(
        &http,
        "GetQueueAttributes",
        json!({"QueueUrl": queue, "AttributeNames": ["QueueArn"]}),
    )
    .await["Attributes"]["QueueArn"]
        .as_str()
        .unwrap()
        .to_owned();
    bridge
        .put_rule()
        .name("auth-events")
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["serverless-auth"]}"#)
        .send()
        .await
        .unwrap();
    bridge
        .put_targets()
        .rule("auth-events")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sdk)
            .endpoint_url(std::env::var("AWS_ENDPOINT_URL_SSM").unwrap_or_else(|_| moto()))
            .build(),
    );
    let parameter = format!("/test/webhook-secret-{}", uuid::Uuid::new_v4().simple());
    ssm.put_parameter()
        .name(&parameter)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(SECRET)
        .send()
        .await
        .unwrap();

    // The function, as deployed: its settings from its environment, its calls under its own
    // key (the IAM check holds them against its role).
    let hook = receiver().await;
    let moto_url = moto();
    let ssm_url = std::env::var("AWS_ENDPOINT_URL_SSM").unwrap_or_else(|_| moto());
    let env: HashMap<&str, &str> = HashMap::from([
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "events"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", moto_url.as_str()),
        ("AWS_ENDPOINT_URL_SSM", ssm_url.as_str()),
        ("EVENT_BUS_NAME", bus.as_str()),
        ("WEBHOOK_URLS", hook.url.as_str()),
        ("WEBHOOK_SECRET_PARAMETER", parameter.as_str()),
    ]);
    let delivery = events::Delivery::from_env(&env).await.unwrap();

    // The receiver is down: the first event (the user item and nothing else before it)
    // is reported, so that it and the ones after it are tried again.
    let answer = delivery.handle(&json!({"Records": batch})).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "200"}]})
    );
    // Up again: Lambda hands the batch over from the failed record on.
    *hook.down.lock().unwrap() = false;
    let retried: Vec<Value> = batch[1..].to_vec();
    let answer = delivery.handle(&json!({"Records": retried})).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));

    // The webhook: each event once (it failed before it took any), in order, signed.
    let taken = hook.taken.lock().unwrap().clone();
    let types: Vec<String> = taken
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        ["user.created", "session.created", "session.revoked"]
    );
    for (headers, body) in &taken {
        assert!(
            standard_webhooks_signed(SECRET, headers, body),
            "{headers:?}"
        );
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(headers["webhook-id"], event["id"].as_str().unwrap());
        assert_eq!(event["user_id"], user_id.as_str());
    }

    // EventBridge: the first event twice (the outage struck after the bus took it), which
    // its id tells apart; after dropping repeats, each once, in order.
    let mut received = Vec::new();
    for _ in 0..10 {
        let out = sqs(
            &http,
            "ReceiveMessage",
            json!({"QueueUrl": queue, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
        )
        .await;
        let messages = out["Messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() && received.len() >= 4 {
            break;
        }
        received.extend(messages);
    }
    let envelopes: Vec<Value> = received
        .iter()
        .map(|m| serde_json::from_str::<Value>(m["Body"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(envelopes.len(), 4, "{envelopes:?}");
    for envelope in &envelopes {
        assert_eq!(envelope["source"], "serverless-auth");
        assert_eq!(envelope["detail-type"], envelope["detail"]["type"]);
    }
    let mut seen = std::collections::HashSet::new();
    let once: Vec<&str> = envelopes
        .iter()
        .filter(|e| seen.insert(e["detail"]["id"].as_str().unwrap().to_owned()))
        .map(|e| e["detail"]["type"].as_str().unwrap())
        .collect();
    // (A bus keeps no order; the webhook above showed it.)
    let mut once = once;
    once.sort_unstable();
    assert_eq!(once, ["session.created", "session.revoked", "user.created"]);
}
