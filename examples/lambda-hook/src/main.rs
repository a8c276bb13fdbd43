//! An example hook function for serverless-auth (docs/events.md, "Hooks"): set its ARN as
//! `HookBeforeUserCreated` and `HookCustomizeAccessToken`.
//!
//! - `before-user-created`: when `ALLOWED_EMAIL_DOMAINS` is set (comma-separated), only
//!   addresses at those domains may sign up; the others are denied with a message the user
//!   sees.
//! - `customize-access-token`: adds `tenant` (the address's domain) and `mfa` (whether the
//!   sign-in used a second factor) to the access token.
//!
//! Any other request is an error: the function fails, and auth-api handles that as the hook
//! failing (`HookFailure`).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let allowed = allowed_domains(std::env::var("ALLOWED_EMAIL_DOMAINS").ok().as_deref());
    let allowed = &allowed;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        answer(&event.payload, allowed)
    }))
    .await
}

/// The domains of `ALLOWED_EMAIL_DOMAINS`, lower-cased; none means every domain.
fn allowed_domains(setting: Option<&str>) -> Vec<String> {
    setting
        .unwrap_or_default()
        .split(',')
        .map(|domain| domain.trim().to_ascii_lowercase())
        .filter(|domain| !domain.is_empty())
        .collect()
}

/// The domain of an address, lower-cased.
fn domain_of(email: &str) -> Option<String> {
    email
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .filter(|domain| !domain.is_empty())
}

fn answer(request: &Value, allowed: &[String]) -> Result<Value, Error> {
    let email = request["email"]
        .as_str()
        .ok_or("the request has no email")?;
    let domain = domain_of(email).ok_or("the email has no domain")?;
    match request["type"].as_str() {
        Some("before-user-created") => {
            if allowed.is_empty() || allowed.contains(&domain) {
                Ok(json!({"decision": "allow"}))
            } else {
                Ok(json!({
                    "decision": "deny",
                    "message": format!(
                        "Sign-up is open to addresses at {} only.",
                        allowed.join(", ")
                    ),
                }))
            }
        }
        Some("customize-access-token") => {
            let amr = request["amr"].as_array().cloned().unwrap_or_default();
            let second_factor = amr
                .iter()
                .any(|method| matches!(method.as_str(), Some("otp" | "mfa" | "hwk" | "swk")));
            Ok(json!({"claims": {"tenant": domain, "mfa": second_factor}}))
        }
        _ => Err("unknown hook type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_up_only_the_allowed_domains() {
        let allowed = allowed_domains(Some(" Example.com, corp.example "));
        let ask = |email: &str| {
            answer(
                &json!({"type": "before-user-created", "email": email, "method": "password"}),
                &allowed,
            )
            .unwrap()
        };
        assert_eq!(ask("ada@EXAMPLE.com")["decision"], "allow");
        assert_eq!(ask("bob@corp.example")["decision"], "allow");
        let denied = ask("eve@elsewhere.example");
        assert_eq!(denied["decision"], "deny");
        assert_eq!(
            denied["message"],
            "Sign-up is open to addresses at example.com, corp.example only."
        );
        assert_eq!(
            answer(
                &json!({"type": "before-user-created", "email": "eve@elsewhere.example"}),
                &[]
            )
            .unwrap()["decision"],
            "allow"
        );
    }

    #[test]
    fn claims_name_the_tenant_and_the_second_factor() {
        let claims = |amr: Value| {
            answer(
                &json!({"type": "customize-access-token", "email": "ada@Example.com", "amr": amr}),
                &[],
            )
            .unwrap()
        };
        assert_eq!(
            claims(json!(["pwd"])),
            json!({"claims": {"tenant": "example.com", "mfa": false}})
        );
        assert_eq!(claims(json!(["pwd", "otp"]))["claims"]["mfa"], true);
        assert!(answer(&json!({"type": "other", "email": "a@b.c"}), &[]).is_err());
        assert!(answer(&json!({"type": "customize-access-token"}), &[]).is_err());
    }
}
