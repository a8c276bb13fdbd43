//! `auth-admin` against DynamoDB Local, in process (the binary's main only calls
//! `admin::cli::run`): help and exit codes, users, sessions, the audit trail, disabled and
//! deleted accounts refused everywhere, and the import of the Node.js original's users.

use std::process::Command;

use accounts::store::{AdminStore, DynamoStore, MemoryStore, Store};
use auth_api::App;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use integration_tests::app::{Answer, STRONG_PASSWORD, test_app};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use serde_json::{Value, json};

/// What a run of auth-admin printed and returned.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", self.out, self.err))
    }
}

async fn admin(table: &str, args: &[&str]) -> Run {
    admin_at(&endpoint(), table, args).await
}

/// [`admin`] against the DynamoDB endpoint `endpoint` (a fault proxy).
async fn admin_at(endpoint: &str, table: &str, args: &[&str]) -> Run {
    let endpoint = endpoint.to_owned();
    let mut argv = vec!["auth-admin", "--table", table, "--endpoint-url", &endpoint];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = admin::cli::run(argv, &mut out, &mut err).await;
    Run {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

async fn send<S: Store>(app: &App<S>, event: Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

fn credentials(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

async fn register<S: Store>(app: &App<S>, email: &str) -> String {
    let answer = send(
        app,
        Event::post_json(
            Kind::RestV1,
            "/register",
            &credentials(email, STRONG_PASSWORD),
        ),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()["user_id"].as_str().unwrap().to_owned()
}

async fn login<S: Store>(app: &App<S>, email: &str, password: &str) -> Answer {
    send(
        app,
        Event::post_json(Kind::RestV1, "/login", &credentials(email, password)),
    )
    .await
}

/// The tests' own look at the table (not one of auth-api's calls).
fn tests_client() -> aws_sdk_dynamodb::Client {
    integration_tests::dynamo::client_as(&endpoint(), integration_tests::dynamo::TESTS_KEY)
}

async fn app_on_dynamodb() -> App<DynamoStore> {
    test_app(fresh_store(&endpoint()).await)
}

#[tokio::test]
async fn every_command_has_help_and_bad_calls_exit_with_the_usage_code() {
    let top = admin("t", &["--help"]).await;
    assert_eq!(top.code, 0);
    for command in ["users", "sessions", "clients", "import"] {
        assert!(top.out.contains(command), "{}", top.out);
    }
    let helps: &[(&[&str], &[&str])] = &[
        (
            &["users", "--help"],
            &[
                "get",
                "list",
                "set-roles",
                "disable",
                "enable",
                "mfa-reset",
                "delete",
            ],
        ),
        (&["users", "get", "--help"], &["<EMAIL>"]),
        (&["users", "list", "--help"], &["--page-size"]),
        (
            &["users", "set-roles", "--help"],
            &["<EMAIL>", "<ROLES>..."],
        ),
        (&["users", "disable", "--help"], &["every session ends"]),
        (&["users", "enable", "--help"], &["<EMAIL>"]),
        (
            &["users", "mfa-reset", "--help"],
            &["<EMAIL>", "every session ends"],
        ),
        (&["users", "delete", "--help"], &["--yes"]),
        (&["sessions", "--help"], &["list", "revoke"]),
        (&["sessions", "list", "--help"], &["<EMAIL>"]),
        (&["sessions", "revoke", "--help"], &["[ID]", "--all"]),
        (
            &["import", "--help"],
            &["--from-table", "--from-json", "--dry-run"],
        ),
    ];
    for (args, words) in helps {
        let run = admin("t", args).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.err);
        for word in *words {
            assert!(run.out.contains(word), "{args:?} lacks {word}: {}", run.out);
        }
        for global in ["--table", "--region", "--endpoint-url", "--output"] {
            assert!(run.out.contains(global), "{args:?} lacks {global}");
        }
    }
    for bad in [
        &["users"][..],
        &["users", "get"],
        &["users", "frobnicate", "a@example.com"],
        &["sessions", "revoke", "a@example.com"],
        &["sessions", "revoke", "a@example.com", "not-a-uuid"],
        &["import"],
        &["import", "--from-table", "x", "--from-json", "y"],
        &["users", "list", "--page-size", "0"],
        &["--output", "yaml", "users", "list"],
    ] {
        let run = admin("t", bad).await;
        assert_eq!(run.code, admin::exit::USAGE, "{bad:?}: {}", run.err);
        assert!(!run.err.is_empty());
    }
    // No table: an empty --table overrides any USERS_TABLE of the environment.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = admin::cli::run(
        ["auth-admin", "--table", " ", "users", "list"],
        &mut out,
        &mut err,
    )
    .await;
    assert_eq!(code, admin::exit::USAGE);
    assert!(String::from_utf8(err).unwrap().contains("--table"));
}

#[tokio::test]
async fn users_are_read_listed_given_roles_and_every_change_is_audited_with_the_operator() {
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();
    for email in ["grace@example.com", "ada@example.com", "alan@example.com"] {
        register(&app, email).await;
    }
    let listed = admin(
        &table,
        &["--output", "json", "users", "list", "--page-size", "1"],
    )
    .await;
    assert_eq!(listed.code, 0, "{}", listed.err);
    let listed_json = listed.json();
    let emails: Vec<&str> = listed_json
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["ada@example.com", "alan@example.com", "grace@example.com"]
    );
    assert!(!listed.out.contains("$2b$"), "no hash is ever printed");
    assert!(listed.err.contains("scanned: 3 users"), "{}", listed.err);

    let shown = admin(&table, &["users", "get", "ADA@example.com"]).await;
    assert_eq!(shown.code, 0);
    assert!(shown.out.contains("ada@example.com") && shown.out.contains("user"));
    assert_eq!(
        admin(&table, &["users", "get", "nobody@example.com"])
            .await
            .code,
        admin::exit::NOT_FOUND
    );
    assert_eq!(
        admin(&table, &["users", "get", "not an email"]).await.code,
        admin::exit::USAGE
    );
    assert_eq!(
        admin(
            &table,
            &["users", "set-roles", "ada@example.com", "bad role"]
        )
        .await
        .code,
        admin::exit::USAGE
    );

    let set = admin(
        &table,
        &["users", "set-roles", "ada@example.com", "user", "admin"],
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.err);
    assert!(set.out.contains("next refresh"), "{}", set.out);
    // The operator's identity, from STS (moto in scripts/test), on stderr and in the table.
    let line: Value = serde_json::from_str(set.err.lines().last().unwrap()).unwrap();
    assert_eq!(line["event"], "admin_users_set_roles");
    let operator = line["entry"]["operator"].as_str().unwrap().to_owned();
    assert!(operator.starts_with("arn:aws:"), "{operator}");
    let day = time::OffsetDateTime::now_utc().date();
    let audit = tests_client()
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("ADMINAUDIT#{day}")))
        .send()
        .await
        .unwrap();
    let items = audit.items.unwrap();
    // The intent before the change, the outcome after it (sort keys are times).
    let outcomes: Vec<&str> = items
        .iter()
        .map(|i| i["outcome"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(outcomes, ["intended", "succeeded"]);
    for item in &items {
        assert_eq!(item["action"].as_s().unwrap(), "users_set_roles");
        assert_eq!(item["operator"].as_s().unwrap(), &operator);
        assert_eq!(item["operator_confirmed"].as_bool().unwrap(), &true);
        assert_eq!(item["email"].as_s().unwrap(), "ada@example.com");
    }

    // A new token carries the roles.
    let tokens = login(&app, "ada@example.com", STRONG_PASSWORD).await.json();
    let claims = send(
        &app,
        Event::get(Kind::RestV1, "/verify").bearer(tokens["access_token"].as_str().unwrap()),
    )
    .await
    .json();
    assert_eq!(claims["roles"], json!(["user", "admin"]));
}

/// Everywhere a disabled account could still do something.
async fn a_disabled_account_is_refused_everywhere_and_works_again_once_enabled<S: Store>(
    app: App<S>,
) {
    let sub = register(&app, "ada@example.com").await;
    let tokens = login(&app, "ada@example.com", STRONG_PASSWORD).await.json();
    let user = app
        .accounts
        .store
        .find_user(&accounts::model::credentials::Email::parse("ada@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(app.accounts.store.set_disabled(&user, true).await.unwrap());

    let right = login(&app, "ada@example.com", STRONG_PASSWORD).await;
    let wrong = login(&app, "ada@example.com", "wrong horse battery staple").await;
    assert_eq!((right.status, right.json()), (wrong.status, wrong.json()));
    assert_eq!(right.status, 401);
    send(
        &app,
        Event::post_json(
            Kind::RestV1,
            "/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        ),
    )
    .await
    .problem(401);
    for event in [
        Event::get(Kind::RestV1, "/me"),
        Event::get(Kind::RestV1, "/sessions"),
        Event::post_json(
            Kind::RestV1,
            "/password",
            &json!({"current_password": STRONG_PASSWORD, "new_password": "purple elephant juggling seventeen oranges"}),
        ),
        Event::new(Kind::RestV1, "DELETE", "/me")
            .body(&json!({"password": STRONG_PASSWORD}).to_string())
            .header("Content-Type", "application/json"),
    ] {
        let answer = send(&app, event.authorized(&sub, "ada@example.com")).await;
        assert_eq!(
            answer.problem(403)["type"],
            "urn:problem-type:auth:account-disabled"
        );
    }

    let user = app
        .accounts
        .store
        .find_user(&user.email)
        .await
        .unwrap()
        .unwrap();
    assert!(app.accounts.store.set_disabled(&user, false).await.unwrap());
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        200
    );
    // Its old sessions stay ended: disabling moved the epoch on.
    send(
        &app,
        Event::post_json(
            Kind::RestV1,
            "/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        ),
    )
    .await
    .problem(401);
}

#[tokio::test]
async fn a_disabled_account_is_refused_everywhere_memory() {
    a_disabled_account_is_refused_everywhere_and_works_again_once_enabled(test_app(
        MemoryStore::new(),
    ))
    .await;
}

#[tokio::test]
async fn a_disabled_account_is_refused_everywhere_dynamodb() {
    a_disabled_account_is_refused_everywhere_and_works_again_once_enabled(app_on_dynamodb().await)
        .await;
}

#[tokio::test]
async fn disabling_enabling_sessions_and_deletion_through_the_command() {
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();
    register(&app, "ada@example.com").await;
    let first = login(&app, "ada@example.com", STRONG_PASSWORD).await.json();
    let second = login(&app, "ada@example.com", STRONG_PASSWORD).await.json();
    let refresh = |tokens: &Value| {
        Event::post_json(
            Kind::RestV1,
            "/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
    };

    let sessions = admin(
        &table,
        &["--output", "json", "sessions", "list", "ada@example.com"],
    )
    .await;
    assert_eq!(sessions.code, 0, "{}", sessions.err);
    let ids: Vec<String> = sessions
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    let table_view = admin(&table, &["sessions", "list", "ada@example.com"]).await;
    assert!(table_view.out.starts_with("ID "), "{}", table_view.out);
    assert_eq!(table_view.out.lines().count(), 3);

    // The newest (second) login's session first.
    let one = admin(&table, &["sessions", "revoke", "ada@example.com", &ids[0]]).await;
    assert_eq!(one.code, 0, "{}", one.err);
    send(&app, refresh(&second)).await.problem(401);
    let first = send(&app, refresh(&first)).await;
    assert_eq!(first.status, 200);
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        admin(&table, &["sessions", "revoke", "ada@example.com", &unknown])
            .await
            .code,
        admin::exit::NOT_FOUND
    );
    let all = admin(&table, &["sessions", "revoke", "ada@example.com", "--all"]).await;
    assert_eq!(all.code, 0);
    send(&app, refresh(&first.json())).await.problem(401);

    let disabled = admin(&table, &["users", "disable", "ada@example.com"]).await;
    assert_eq!(disabled.code, 0, "{}", disabled.err);
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        401
    );
    let shown = admin(
        &table,
        &["--output", "json", "users", "get", "ada@example.com"],
    )
    .await;
    assert_eq!(shown.json()["disabled"], true);
    assert_eq!(
        admin(&table, &["users", "enable", "ada@example.com"])
            .await
            .code,
        0
    );
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        200
    );

    let refused = admin(&table, &["users", "delete", "ada@example.com"]).await;
    assert_eq!(refused.code, admin::exit::USAGE);
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        200
    );
    let deleted = admin(&table, &["users", "delete", "ada@example.com", "--yes"]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.err);
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        401
    );
    assert_eq!(
        admin(&table, &["users", "get", "ada@example.com"])
            .await
            .code,
        admin::exit::NOT_FOUND
    );
    register(&app, "ada@example.com").await;
}

/// The Node.js original's table: key `username`, items as its register handler writes them
/// (hashed by bcryptjs 2.x, tests/legacy/original_register.js).
async fn original_table(rows: &Value) -> (String, Vec<Value>) {
    let mut child = Command::new("node")
        .arg("tests/legacy/original_register.js")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs (scripts/test installs bcryptjs into .tools/node)");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rows.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "original_register.js failed");
    let items: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();

    // The original's table is the tests' own doing, not auth-api's.
    let client =
        integration_tests::dynamo::client_as(&endpoint(), integration_tests::dynamo::TESTS_KEY);
    let table = format!(
        "audio_client_server_users-{}",
        uuid::Uuid::new_v4().simple()
    );
    client
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("username")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("username")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    for item in &items {
        let mut put = client.put_item().table_name(&table);
        for (name, value) in item.as_object().unwrap() {
            put = put.item(name, AttributeValue::S(value.as_str().unwrap().to_owned()));
        }
        put.send().await.unwrap();
    }
    (table, items)
}

#[tokio::test]
async fn the_original_s_users_are_imported_once_and_sign_in_with_their_passwords() {
    let rows = json!([
        {"username": "Ada ", "name": "Ada Lovelace", "email": "Ada@Example.com", "password": "analytical engine 1843"},
        // The original trimmed passwords before hashing: this user typed a trailing space.
        {"username": "grace", "name": "Grace Hopper", "email": "grace@example.com", "password": "cobol compiler 1959 "},
        // Two rows whose emails are one after normalization: neither is imported.
        {"username": "alan", "name": "Alan", "email": "Alan@example.com", "password": "enigma bombe 1940"},
        {"username": "alan2", "name": "Alan T", "email": " alan@EXAMPLE.com", "password": "enigma bombe 1941"},
        {"username": "nomail", "name": "No Mail", "password": "whatever it was"},
        {"username": "badmail", "name": "Bad", "email": "not-an-email", "password": "whatever it was"},
    ]);
    let (source, items) = original_table(&rows).await;
    assert!(
        items[0]["password"]
            .as_str()
            .unwrap()
            .starts_with("$2a$10$")
    );
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();

    let dry = admin(
        &table,
        &[
            "--output",
            "json",
            "import",
            "--from-table",
            &source,
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(dry.code, 0, "{}", dry.err);
    assert_eq!(dry.json()["imported"], 2);
    assert_eq!(
        admin(&table, &["users", "list"]).await.out.lines().count(),
        1,
        "nothing written"
    );

    let first = admin(
        &table,
        &["--output", "json", "import", "--from-table", &source],
    )
    .await;
    assert_eq!(first.code, 0, "{}", first.err);
    let summary = first.json();
    assert_eq!(summary["rows"], 6);
    assert_eq!(summary["imported"], 2);
    assert_eq!(summary["already_present"], 0);
    let skipped = summary["skipped"].as_array().unwrap();
    let reasons: Vec<(&str, &str)> = skipped
        .iter()
        .map(|s| {
            (
                s["username"].as_str().unwrap(),
                s["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    for (username, reason) in &reasons {
        match *username {
            "alan" | "alan2" => assert!(
                reason.contains("alan@example.com is the email of 2 rows"),
                "{reason}"
            ),
            "nomail" => assert_eq!(*reason, "no email"),
            "badmail" => assert_eq!(*reason, "malformed email"),
            other => panic!("{other} skipped: {reason}"),
        }
    }
    assert!(
        first.err.contains("[####################] 2/2"),
        "{}",
        first.err
    );

    // Kept as they were: username and name in /me, the $2a$ hash, marked legacy.
    let ada = admin(
        &table,
        &["--output", "json", "users", "get", "ada@example.com"],
    )
    .await
    .json();
    assert_eq!(ada["username"], "ada");
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["legacy_password"], true);
    let me = send(
        &app,
        Event::get(Kind::RestV1, "/me")
            .authorized(ada["user_id"].as_str().unwrap(), "ada@example.com"),
    )
    .await
    .json();
    assert_eq!(
        (me["username"].as_str(), me["name"].as_str()),
        (Some("ada"), Some("Ada Lovelace"))
    );

    // Twice is harmless.
    let again = admin(
        &table,
        &["--output", "json", "import", "--from-table", &source],
    )
    .await;
    assert_eq!(again.json()["imported"], 0);
    assert_eq!(again.json()["already_present"], 2);

    // They sign in with the passwords they know, exactly as typed, with no reset.
    assert_eq!(
        login(&app, "ada@example.com", "analytical engine 1843")
            .await
            .status,
        200
    );
    assert_eq!(
        login(&app, "grace@example.com", "cobol compiler 1959 ")
            .await
            .status,
        200
    );
    // The first success stored a hash of the exact password at our cost, not legacy any more:
    // the trimmed form no longer works for grace, the exact one still does.
    let grace = admin(
        &table,
        &["--output", "json", "users", "get", "grace@example.com"],
    )
    .await
    .json();
    assert_eq!(grace["legacy_password"], false);
    let stored = app
        .accounts
        .store
        .find_user(&accounts::model::credentials::Email::parse("grace@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    use secrecy::ExposeSecret as _;
    assert!(stored.password_hash.expose_secret().starts_with("$2b$04$"));
    assert_eq!(
        login(&app, "grace@example.com", "cobol compiler 1959")
            .await
            .status,
        401
    );
    assert_eq!(
        login(&app, "grace@example.com", "cobol compiler 1959 ")
            .await
            .status,
        200
    );
    assert_eq!(
        login(&app, "ada@example.com", "analytical engine 1842")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn a_json_export_imports_alike_in_plain_and_dynamodb_json() {
    let rows = json!([
        {"username": "ada", "name": "Ada", "email": "ada@example.com", "password": "analytical engine 1843"},
        {"username": "grace", "name": "Grace", "email": "grace@example.com", "password": "cobol compiler 1959"},
    ]);
    let (_, items) = original_table(&rows).await;
    // Line 1 plain JSON, line 2 DynamoDB JSON as `aws dynamodb scan` prints an item, line 3
    // not an object, line 4 a hash that is not bcrypt.
    let typed: serde_json::Map<String, Value> = items[1]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!({"S": v})))
        .collect();
    let text = format!(
        "{}\n{}\n[1,2]\n{}\n",
        items[0],
        Value::Object(typed),
        json!({"username": "md5", "email": "md5@example.com", "password": "5f4dcc3b5aa765d61d8327deb882cf99"})
    );
    let file = std::env::temp_dir().join(format!("legacy-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, text).unwrap();
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();
    let run = admin(&table, &["import", "--from-json", file.to_str().unwrap()]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(
        run.out
            .starts_with("4 rows: imported 2, already present 0, skipped 2"),
        "{}",
        run.out
    );
    assert!(
        run.out.contains("not a JSON object") && run.out.contains("not a bcrypt hash"),
        "{}",
        run.out
    );
    assert_eq!(
        login(&app, "grace@example.com", "cobol compiler 1959")
            .await
            .status,
        200
    );
    let missing = admin(
        &table,
        &["import", "--from-json", "/nonexistent/file.jsonl"],
    )
    .await;
    assert_eq!(missing.code, admin::exit::USAGE);
}

/// Hashes costlier than `--max-cost` (12 unless set) are refused with the row's reason: each
/// login to such an account would be slower than everyone else's, and at cost 31 never end.
#[tokio::test]
async fn import_refuses_hashes_above_the_maximum_cost() {
    let rows = json!([
        {"username": "ada", "email": "ada@example.com", "password": "analytical engine 1843"},
    ]);
    let (_, items) = original_table(&rows).await;
    let hash = items[0]["password"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("$2a$10$"), "{hash}");
    let at = |cost: u32| format!("$2a${cost:02}{}", &hash[6..]);
    let text = [("ada", 10), ("grace", 13), ("alan", 31)]
        .iter()
        .map(|(name, cost)| {
            json!({"username": name, "email": format!("{name}@example.com"), "password": at(*cost)})
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = std::env::temp_dir().join(format!("legacy-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, text).unwrap();
    let path = file.to_str().unwrap();
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();
    let run = admin(&table, &["--output", "json", "import", "--from-json", path]).await;
    assert_eq!(run.code, 0, "{}", run.err);
    let summary = run.json();
    assert_eq!(summary["imported"], 1, "{summary}");
    let reasons: Vec<(String, String)> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["username"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "grace".to_owned(),
                "bcrypt cost 13 is above --max-cost 12".to_owned()
            ),
            (
                "alan".to_owned(),
                "bcrypt cost 31 is above --max-cost 12".to_owned()
            ),
        ]
    );
    // A higher maximum is the operator's choice; 31 stays refused below it.
    let run = admin(
        &table,
        &[
            "--output",
            "json",
            "import",
            "--max-cost",
            "13",
            "--from-json",
            path,
        ],
    )
    .await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(run.code, 0, "{}", run.err);
    let summary = run.json();
    assert_eq!(summary["imported"], 1, "{summary}");
    assert_eq!(summary["already_present"], 1, "{summary}");
    assert_eq!(summary["skipped"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(
        admin(&table, &["import", "--max-cost", "32", "--from-json", "x"])
            .await
            .code,
        admin::exit::USAGE
    );
}

/// Names and usernames are written by whoever registered (or by the imported system's
/// users): escape sequences in them reach the operator's terminal escaped, in tables and in
/// JSON alike, never as control characters.
#[tokio::test]
async fn attacker_written_values_reach_the_operators_terminal_escaped() {
    let name = "Ada\u{1b}]0;owned\u{7}\u{1b}[2J\u{7f}";
    let username = "ada\u{9b}31m\u{202e}";
    let rows = json!([
        {"username": username, "name": name, "email": "evil@example.com", "password": "analytical engine 1843"},
    ]);
    let (_, items) = original_table(&rows).await;
    let file = std::env::temp_dir().join(format!("legacy-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        format!("{}\n{{\"username\":\"\\u001b[31mx\"}}\n", items[0]),
    )
    .unwrap();
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();
    let mut runs = vec![admin(&table, &["import", "--from-json", file.to_str().unwrap()]).await];
    let _ = std::fs::remove_file(&file);
    assert_eq!(runs[0].code, 0, "{}", runs[0].err);
    for output in ["table", "json"] {
        runs.push(
            admin(
                &table,
                &["--output", output, "users", "get", "evil@example.com"],
            )
            .await,
        );
        runs.push(admin(&table, &["--output", output, "users", "list"]).await);
        runs.push(
            admin(
                &table,
                &[
                    "--output",
                    output,
                    "users",
                    "set-roles",
                    "evil@example.com",
                    "user",
                ],
            )
            .await,
        );
    }
    for run in &runs {
        assert_eq!(run.code, 0, "{}", run.err);
        for text in [&run.out, &run.err] {
            let raw: Vec<char> = text
                .chars()
                .filter(|c| {
                    (c.is_control() && *c != '\n' && *c != '\r')
                        || ('\u{202a}'..='\u{202e}').contains(c)
                })
                .collect();
            assert!(raw.is_empty(), "raw control characters {raw:?} in {text:?}");
        }
    }
    // Shown, escaped, not dropped: the operator sees what is there.
    let table_get = &runs[1].out;
    assert!(table_get.contains("\\u{1b}]0;owned"), "{table_get}");
    assert!(table_get.contains("\\u{9b}31m"), "{table_get}");
    let json_get: Value = runs[4].json();
    assert_eq!(json_get["name"], name);
    assert_eq!(json_get["username"], username);
}

/// A change that fails half-way is on record: its intent before it started, its failure after.
/// Here the account is deleted and the clean-up of its sessions is refused (AccessDenied).
#[tokio::test]
async fn a_change_that_fails_half_way_leaves_its_intent_and_its_failure_on_record() {
    use integration_tests::dynamo::{Mode, Proxy};
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();
    register(&app, "ada@example.com").await;
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        200
    );
    let proxy = Proxy::start_for(&endpoint()).await;
    proxy.restart(Mode::Deny("Query")).await;
    let run = admin_at(
        &proxy.url(),
        &table,
        &["users", "delete", "ada@example.com", "--yes"],
    )
    .await;
    assert_ne!(run.code, 0, "{}", run.out);
    let items = tests_client()
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let mut audit: Vec<_> = items
        .iter()
        .filter(|i| i["pk"].as_s().unwrap().starts_with("ADMINAUDIT#"))
        .collect();
    audit.sort_by_key(|i| i["sk"].as_s().unwrap().clone());
    let records: Vec<(&str, &str)> = audit
        .iter()
        .map(|i| {
            (
                i["action"].as_s().unwrap().as_str(),
                i["outcome"].as_s().unwrap().as_str(),
            )
        })
        .collect();
    assert_eq!(
        records,
        [("users_delete", "intended"), ("users_delete", "failed")]
    );
    assert!(
        audit[1]["detail"].as_s().unwrap().contains("store"),
        "{:?}",
        audit[1]["detail"]
    );
    // The account itself is gone (the first step), as the intent says was attempted.
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        401
    );
}

/// A user who lost their authenticator and recovery codes: `users mfa-reset` turns two-factor
/// sign-in off, ends every session, and is audited; the password alone signs in again.
#[tokio::test]
async fn mfa_reset_turns_two_factor_sign_in_off_and_ends_every_session() {
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();
    let email = "ada@example.com";
    let sub = register(&app, email).await;
    integration_tests::app::verify_from_outbox(&app, email).await;
    let before = login(&app, email, STRONG_PASSWORD).await.json();
    let enrolled = send(
        &app,
        Event::post_json(
            Kind::RestV1,
            "/mfa/totp/enroll",
            &json!({"password": STRONG_PASSWORD}),
        )
        .authorized(&sub, email),
    )
    .await
    .json();
    let secret =
        accounts::model::mfa::TotpSecret::from_base32(enrolled["secret"].as_str().unwrap())
            .unwrap();
    let now = shared::Clock::now(app.accounts.clock.as_ref());
    let confirmed = send(
        &app,
        Event::post_json(
            Kind::RestV1,
            "/mfa/totp/confirm",
            &json!({"code": secret.code_at(now)}),
        )
        .authorized(&sub, email),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(
        login(&app, email, STRONG_PASSWORD).await.json()["mfa_required"],
        true
    );
    let confirmed = confirmed.json();

    let run = admin(&table, &["--output", "json", "users", "mfa-reset", email]).await;
    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(run.json()["mfa_enabled"], false);
    let user = app
        .accounts
        .store
        .find_user(&accounts::model::credentials::Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!user.mfa.enabled() && user.mfa.recovery.is_empty());
    // Every session ended, the one from the confirmation too.
    for tokens in [&before, &confirmed] {
        let refresh = json!({"refresh_token": tokens["refresh_token"]});
        let answer = send(&app, Event::post_json(Kind::RestV1, "/refresh", &refresh)).await;
        assert_eq!(answer.status, 401, "{}", answer.text);
    }
    let tokens = login(&app, email, STRONG_PASSWORD).await.json();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    let audit = tests_client()
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let dump = format!("{:?}", audit.items.unwrap_or_default());
    assert!(dump.contains("users_mfa_reset"), "audited");
    let missing = admin(&table, &["users", "mfa-reset", "nobody@example.com"]).await;
    assert_eq!(missing.code, admin::exit::NOT_FOUND, "{}", missing.err);
}

/// Runs `auth-admin keys …` (no table needed).
async fn keys(args: &[&str]) -> Run {
    let mut argv = vec!["auth-admin", "keys"];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = admin::cli::run(argv, &mut out, &mut err).await;
    Run {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

/// A path in a fresh temporary folder.
fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("auth-admin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test]
async fn keys_generate_writes_the_private_key_only_to_a_new_private_file() {
    use std::os::unix::fs::PermissionsExt as _;
    for (kind, alg) in [("ed25519", "EdDSA"), ("rsa", "RS256")] {
        let path = temp_path("signing-key.pem");
        let run = keys(&["generate", "--kind", kind, "--out", path.to_str().unwrap()]).await;
        assert_eq!(run.code, 0, "{kind}: {}", run.err);
        assert!(!run.out.contains("PRIVATE") && !run.err.contains("PRIVATE"));
        let jwk: Value = serde_json::from_str(&run.out).unwrap();
        assert_eq!(jwk["alg"], alg);
        assert!(jwk.get("d").is_none(), "no private member: {jwk}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{kind}");
        let pem = std::fs::read_to_string(&path).unwrap();
        let key = shared::SigningKey::from_pem(&pem, None).unwrap();
        assert_eq!(jwk["kid"], key.kid(), "the kid is the key's thumbprint");

        // A token signed with the file's key verifies with the JWKS `keys jwks` builds.
        let jwks = keys(&["jwks", path.to_str().unwrap()]).await;
        assert_eq!(jwks.code, 0, "{}", jwks.err);
        let set = shared::KeySet::from_jwks_json(jwks.out.trim()).unwrap();
        let settings = integration_tests::app::settings();
        let token = shared::TokenIssuer::new(key, settings.clone(), 900)
            .issue(
                &integration_tests::authorizer_events::subject(&["user"]),
                shared::token::now_unix(),
            )
            .unwrap()
            .token;
        let verifier = shared::TokenVerifier::new(set, settings, 30);
        use secrecy::ExposeSecret as _;
        assert!(verifier.verify(token.expose_secret()).is_ok(), "{kind}");

        // Never over an existing file.
        let again = keys(&["generate", "--kind", kind, "--out", path.to_str().unwrap()]).await;
        assert_eq!(again.code, admin::exit::USAGE, "{}", again.err);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), pem, "untouched");
    }
    let neither = keys(&["generate"]).await;
    assert_eq!(neither.code, admin::exit::USAGE);
}

#[tokio::test]
async fn keys_generate_can_put_the_private_key_straight_into_ssm() {
    // moto loads its SSM backend on the first request, which can take seconds on a cold
    // machine: a patient client of the test's own warms it up before auth-admin's call.
    let sdk = accounts::aws::from_env(&shared::config::ProcessEnv).unwrap();
    let patient = aws_sdk_ssm::config::timeout::TimeoutConfig::builder()
        .operation_timeout(std::time::Duration::from_secs(60))
        .operation_attempt_timeout(std::time::Duration::from_secs(30))
        .build();
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SSM")
        .expect("AWS_ENDPOINT_URL_SSM: run scripts/test, which starts moto");
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .timeout_config(patient)
            .build(),
    );
    let _ = ssm.describe_parameters().send().await;
    let name = format!("/test/signing-key-{}", uuid::Uuid::new_v4().simple());
    let run = keys(&["generate", "--kind", "rsa", "--ssm-parameter", &name]).await;
    assert_eq!(run.code, 0, "{}", run.err);
    let jwk: Value = serde_json::from_str(&run.out).unwrap();
    let stored = ssm
        .get_parameter()
        .name(&name)
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(
        stored.r#type,
        Some(aws_sdk_ssm::types::ParameterType::SecureString)
    );
    let key = shared::SigningKey::from_pem(&stored.value.unwrap(), None).unwrap();
    assert_eq!(jwk["kid"], key.kid());
    let exists = keys(&["generate", "--ssm-parameter", &name]).await;
    assert_eq!(exists.code, admin::exit::USAGE, "{}", exists.err);
    assert!(exists.err.contains("--overwrite"), "{}", exists.err);
    let replaced = keys(&["generate", "--ssm-parameter", &name, "--overwrite"]).await;
    assert_eq!(replaced.code, 0, "{}", replaced.err);
}

#[tokio::test]
async fn keys_jwks_builds_public_jwks_that_sam_cli_receives_whole() {
    let a = temp_path("a.pem");
    let b = temp_path("b.jwk.json");
    assert_eq!(
        keys(&["generate", "--out", a.to_str().unwrap()]).await.code,
        0
    );
    let b_pem = temp_path("b.pem");
    let b_run = keys(&[
        "generate",
        "--kind",
        "rsa",
        "--out",
        b_pem.to_str().unwrap(),
    ])
    .await;
    std::fs::write(&b, &b_run.out).unwrap();
    let run = keys(&["jwks", a.to_str().unwrap(), b.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.err);
    let document: Value = serde_json::from_str(run.out.trim()).unwrap();
    assert_eq!(document["keys"].as_array().unwrap().len(), 2);
    assert!(!run.out.contains("\"d\""), "public only");

    // --sam prints one shell word; bash and SAM CLI's own parser hand over the whole JSON.
    let word = keys(&["jwks", "--sam", a.to_str().unwrap(), b.to_str().unwrap()]).await;
    assert_eq!(word.code, 0, "{}", word.err);
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("printf '%s\\0' {}", word.out.trim()))
        .output()
        .unwrap();
    let words: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .split('\0')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(words.len(), 1, "{words:?}");
    let parsed = Command::new("python3")
        .arg("tests/sam/sam_checks.py")
        .arg("overrides")
        .arg(&words[0])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let parsed: Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(parsed["PublicJwks"], run.out.trim());

    // What the functions would refuse is refused here: a private member, the same key twice.
    let private = temp_path("private.json");
    std::fs::write(&private, r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#).unwrap();
    let refused = keys(&["jwks", private.to_str().unwrap()]).await;
    assert_eq!(refused.code, admin::exit::USAGE, "{}", refused.out);
    let twice = keys(&["jwks", a.to_str().unwrap(), a.to_str().unwrap()]).await;
    assert_eq!(twice.code, admin::exit::USAGE, "{}", twice.out);
}

/// The rotation procedure of docs/deploy.md, over local-api (restarted at each step, as a deploy
/// replaces the functions) on one DynamoDB table: publish the new key, then sign with it, then
/// retire the old one after the access tokens' lifetime. At no step is a live token refused;
/// the wrong order (signing with a key not published) does not start.
#[tokio::test]
async fn keys_rotate_without_refusing_a_live_token() {
    use integration_tests::local::LocalApi;

    let old_pem = temp_path("old.pem");
    let new_pem = temp_path("new.pem");
    for path in [&old_pem, &new_pem] {
        assert_eq!(
            keys(&["generate", "--out", path.to_str().unwrap()])
                .await
                .code,
            0
        );
    }
    let (old, new) = (
        std::fs::read_to_string(&old_pem).unwrap(),
        std::fs::read_to_string(&new_pem).unwrap(),
    );
    let jwks = |paths: &[&std::path::Path]| {
        let args: Vec<String> = paths
            .iter()
            .map(|p| p.to_str().unwrap().to_owned())
            .collect();
        async move {
            let mut argv = vec!["jwks"];
            argv.extend(args.iter().map(String::as_str));
            let run = keys(&argv).await;
            assert_eq!(run.code, 0, "{}", run.err);
            run.out.trim().to_owned()
        }
    };
    let store = fresh_store(&endpoint()).await;
    let http = reqwest::Client::new();
    let spawn = |signing: String, public: String| {
        let store = store.clone();
        async move {
            LocalApi::spawn(
                store,
                &[
                    ("JWT_SIGNING_KEY", signing.as_str()),
                    ("JWT_PUBLIC_KEYS", public.as_str()),
                    ("JWT_ISSUER", "http://127.0.0.1:9"),
                ],
                |spec| spec.authorizer_ttl = 0,
            )
            .await
        }
    };
    let me = |api: &LocalApi<DynamoStore>, token: &str| {
        let request = http.get(api.at("/me")).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let sign_in = |api: &LocalApi<DynamoStore>| {
        let request = http
            .post(api.at("/login"))
            .json(&json!({"email": "ada@example.com", "password": STRONG_PASSWORD}));
        async move {
            let answer: Value = request.send().await.unwrap().json().await.unwrap();
            answer["access_token"].as_str().unwrap().to_owned()
        }
    };

    // 0. Today: the old key signs and is the only one published.
    let api = spawn(old.clone(), jwks(&[&old_pem]).await).await;
    let registered = http
        .post(api.at("/register"))
        .json(&json!({"email": "ada@example.com", "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let by_old = sign_in(&api).await;
    assert_eq!(me(&api, &by_old).await, 200);
    api.stop().await;

    // 1. Publish the new key beside the old one; the old still signs.
    let api = spawn(old.clone(), jwks(&[&old_pem, &new_pem]).await).await;
    assert_eq!(me(&api, &by_old).await, 200);
    api.stop().await;

    // 2. Sign with the new key: tokens of both keys work.
    let api = spawn(new.clone(), jwks(&[&new_pem, &old_pem]).await).await;
    let by_new = sign_in(&api).await;
    assert_eq!(me(&api, &by_old).await, 200, "a live token of the old key");
    assert_eq!(me(&api, &by_new).await, 200);
    api.stop().await;

    // 3. After the access tokens' lifetime, retire the old key.
    let api = spawn(new.clone(), jwks(&[&new_pem]).await).await;
    assert_eq!(me(&api, &by_new).await, 200);
    assert_eq!(me(&api, &by_old).await, 401, "the retired key's tokens");
    api.stop().await;

    // The wrong order: signing with a key that is not published does not start.
    let mut env = std::collections::HashMap::new();
    let public = jwks(&[&old_pem]).await;
    env.insert("JWT_SIGNING_KEY", new.as_str());
    env.insert("JWT_PUBLIC_KEYS", public.as_str());
    let spec = local_api::template::parse(integration_tests::local::TEMPLATE).unwrap();
    let refused = local_api::LocalConfig::from_env(&env, &spec).err().unwrap();
    assert_eq!(refused.variable, "JWT_PUBLIC_KEYS");
    assert!(
        refused.problem.contains("signing key"),
        "{}",
        refused.problem
    );
    let auth_api_env = std::collections::HashMap::from([
        ("USERS_TABLE", "users"),
        ("JWT_ISSUER", "https://auth.test"),
        ("JWT_AUDIENCE", "test-api"),
        ("JWT_SIGNING_KEY", new.as_str()),
        ("JWT_PUBLIC_KEYS", public.as_str()),
    ]);
    let refused = auth_api::config::Config::from_env(&auth_api_env)
        .err()
        .unwrap();
    assert_eq!(refused.variable, "JWT_PUBLIC_KEYS");
}

/// `clients …`: create prints the secret once (and `--json` too), get and list never do;
/// update, rotate (old secret kept for its grace), disable, enable and delete change what the
/// token endpoint accepts; every change is audited with the client id, never a secret.
#[tokio::test]
async fn clients_are_registered_rotated_disabled_and_deleted_through_the_command() {
    let app = app_on_dynamodb().await;
    let table = app.accounts.store.table().to_owned();
    let created = admin(
        &table,
        &[
            "clients",
            "create",
            "--json",
            "--name",
            "billing",
            "--scopes",
            "orders:read orders:write",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.err);
    let client = created.json();
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(client["type"], "confidential");
    assert_eq!(client["grant_types"], json!(["client_credentials"]));
    assert_eq!(client["scopes"], json!(["orders:read", "orders:write"]));
    assert!(
        !created.err.contains(&secret),
        "the secret reached the audit line"
    );
    let token = |secret: String| {
        let app = &app;
        let id = id.clone();
        async move {
            let basic = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{id}:{secret}"),
            );
            send(
                app,
                Event::new(Kind::RestV1, "POST", "/oauth2/token")
                    .body("grant_type=client_credentials")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", &format!("Basic {basic}")),
            )
            .await
            .status
        }
    };
    assert_eq!(token(secret.clone()).await, 200);

    // Shown and listed without any secret or hash.
    let shown = admin(&table, &["clients", "get", &id]).await;
    assert_eq!(shown.code, 0, "{}", shown.err);
    assert!(shown.out.contains("billing") && !shown.out.contains(&secret));
    let listed = admin(&table, &["--output", "json", "clients", "list"]).await;
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
    assert!(!listed.out.contains(&secret) && !listed.out.contains("hash"));
    assert_eq!(
        admin(&table, &["clients", "get", "nobody"]).await.code,
        admin::exit::NOT_FOUND
    );
    for bad in [
        &["clients", "create", "--name", "x", "--scopes", "a\"b"][..],
        &["clients", "create", "--name", "x", "--type", "public"][..],
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--grant-types",
            "password",
        ][..],
        &[
            "clients",
            "rotate-secret",
            "x",
            "--old-secret-valid-for",
            "1y",
        ][..],
        &["clients", "delete", "x"][..],
    ] {
        assert_eq!(admin(&table, bad).await.code, admin::exit::USAGE, "{bad:?}");
    }

    let updated = admin(
        &table,
        &[
            "--json",
            "clients",
            "update",
            &id,
            "--scopes",
            "orders:read",
        ],
    )
    .await;
    assert_eq!(updated.code, 0, "{}", updated.err);
    assert_eq!(updated.json()["scopes"], json!(["orders:read"]));

    let rotated = admin(
        &table,
        &[
            "--json",
            "clients",
            "rotate-secret",
            &id,
            "--old-secret-valid-for",
            "1h",
        ],
    )
    .await;
    assert_eq!(rotated.code, 0, "{}", rotated.err);
    let new_secret = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(token(new_secret.clone()).await, 200);
    assert_eq!(
        token(secret.clone()).await,
        200,
        "the old one, in its grace"
    );
    let rotated = admin(&table, &["--json", "clients", "rotate-secret", &id]).await;
    let newest = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(token(secret.clone()).await, 401, "two rotations on: gone");
    assert_eq!(token(new_secret).await, 401, "no grace asked for: gone now");
    assert_eq!(token(newest.clone()).await, 200);

    assert_eq!(admin(&table, &["clients", "disable", &id]).await.code, 0);
    assert_eq!(token(newest.clone()).await, 401);
    assert_eq!(admin(&table, &["clients", "enable", &id]).await.code, 0);
    assert_eq!(token(newest.clone()).await, 200);
    let deleted = admin(&table, &["clients", "delete", &id, "--yes"]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.err);
    assert_eq!(token(newest.clone()).await, 401);

    // Every change on record with the client id, and no secret anywhere in the audit.
    let day = time::OffsetDateTime::now_utc().date();
    let audit = tests_client()
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("ADMINAUDIT#{day}")))
        .send()
        .await
        .unwrap();
    let items = audit.items.unwrap();
    let mut actions: Vec<&str> = items
        .iter()
        .filter(|i| i["outcome"].as_s().unwrap() == "succeeded")
        .map(|i| i["action"].as_s().unwrap().as_str())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "clients_create",
            "clients_delete",
            "clients_disable",
            "clients_enable",
            "clients_rotate_secret",
            "clients_rotate_secret",
            "clients_update",
        ]
    );
    for item in &items {
        assert_eq!(item["client_id"].as_s().unwrap(), &id);
        let text = format!("{item:?}");
        for s in [&secret, &newest] {
            assert!(!text.contains(s.as_str()), "a secret in the audit: {text}");
        }
    }
}

/// `users identities EMAIL`: a user's accounts at other providers, in a table or as JSON
/// (with the id `DELETE /identities/{id}` takes).
#[tokio::test]
async fn an_operator_lists_a_user_s_identities() {
    use accounts::model::federation::Identity;
    use accounts::store::FederationStore;
    let store = fresh_store(&endpoint()).await;
    let table = store.table().to_owned();
    let mut user = accounts::model::user::UserRecord::new(
        accounts::model::credentials::Email::parse("lin@example.com").unwrap(),
        String::new().into(),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    user.identities = 1;
    user.has_password = false;
    let identity = Identity {
        provider: "google".into(),
        subject: "248289761001".into(),
        user_id: user.user_id,
        email: Some("lin@example.com".into()),
        linked_at_ms: 1_765_000_000_000,
    };
    store.create_federated_user(&user, &identity).await.unwrap();
    let listed = admin(
        &table,
        &["users", "identities", "lin@example.com", "--json"],
    )
    .await;
    assert_eq!(listed.code, 0, "{}", listed.err);
    assert_eq!(
        listed.json(),
        json!([{"id": "google.MjQ4Mjg5NzYxMDAx", "provider": "google",
                "subject": "248289761001", "email": "lin@example.com",
                "linked_at": "2025-12-06T05:46:40Z"}])
    );
    let table_view = admin(&table, &["users", "identities", "lin@example.com"]).await;
    assert_eq!(table_view.code, 0, "{}", table_view.err);
    assert!(table_view.out.contains("PROVIDER"), "{}", table_view.out);
    assert!(
        table_view.out.contains("248289761001"),
        "{}",
        table_view.out
    );
    let nobody = admin(&table, &["users", "identities", "nobody@example.com"]).await;
    assert_ne!(nobody.code, 0);
}
