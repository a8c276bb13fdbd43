//! Metrics in CloudWatch Embedded Metric Format: one JSON line on stdout per event, which
//! CloudWatch Logs turns into metrics — no API call, no added latency
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! Off unless a Lambda's `main` turns it on ([`enable`]): tests and local-api print no metric
//! lines. The namespace is `METRICS_NAMESPACE` (template.yaml: `ServerlessAuth/<stack>`).

use std::io::Write as _;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The namespace unless `METRICS_NAMESPACE` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "ServerlessAuth";

static SINK: OnceLock<Sink> = OnceLock::new();

struct Sink {
    namespace: String,
    function: &'static str,
}

/// CloudWatch units this code uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Microseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Microseconds => "Microseconds",
        }
    }
}

/// Every metric the functions write. Alarms and the dashboard in the templates name these;
/// a test ties each name there to a variant here, so a renamed metric cannot silently disarm
/// an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// auth-api, per route: how long a request took.
    Latency,
    /// auth-api, per route: one per request.
    Requests,
    /// auth-api, per route: 1 for a 5xx answer, else 0.
    ServerErrors,
    /// auth-api: the store failed, timed out or throttled (a 503).
    StoreFailures,
    /// auth-api: a fault of the deployment or the code (a 500).
    InternalErrors,
    /// auth-api: a mail SES did not take.
    MailFailures,
    LoginSucceeded,
    /// Wrong passwords, unknown emails and disabled accounts.
    LoginFailed,
    /// Wrong second-factor codes at sign-in.
    MfaFailed,
    /// A login backoff or the per-email limit began.
    BackoffStarted,
    Registrations,
    /// A spent refresh token came back after its grace: its session was ended.
    RefreshReuse,
    MfaEnabled,
    PasswordResets,
    /// The token endpoint, per client (`ClientId`): access tokens issued to machine
    /// clients.
    ClientTokensIssued,
    /// The token endpoint: failed client authentications (unknown client, wrong secret,
    /// disabled, too many attempts).
    ClientAuthFailed,
    /// Authorization codes issued (the hosted pages' sign-ins that reached a client).
    CodesIssued,
    /// An authorization code came back after its first use: what it issued was revoked.
    CodeReuse,
    /// Passkey responses refused (bad signature, wrong origin, counter gone back, …).
    PasskeysRefused,
    /// Devices (RFC 8628) that got their tokens: sign-ins of command-line tools and TVs.
    DeviceTokensIssued,
    /// User codes refused on the device page (unknown, expired, or over the lookup limits):
    /// a rise is someone guessing.
    UserCodesRefused,
    /// auth-api: a hook failed, timed out or answered out of contract.
    HookFailures,
    /// The authorizers, per decision and reason.
    Decisions,
    /// The authorizers: how long a decision took.
    DecisionLatency,
}

impl Metric {
    /// Every metric, for the checks that tie the templates to this list.
    pub const ALL: [Metric; 24] = [
        Metric::Latency,
        Metric::Requests,
        Metric::ServerErrors,
        Metric::StoreFailures,
        Metric::InternalErrors,
        Metric::MailFailures,
        Metric::LoginSucceeded,
        Metric::LoginFailed,
        Metric::MfaFailed,
        Metric::BackoffStarted,
        Metric::Registrations,
        Metric::RefreshReuse,
        Metric::MfaEnabled,
        Metric::PasswordResets,
        Metric::ClientTokensIssued,
        Metric::ClientAuthFailed,
        Metric::CodesIssued,
        Metric::CodeReuse,
        Metric::PasskeysRefused,
        Metric::DeviceTokensIssued,
        Metric::UserCodesRefused,
        Metric::HookFailures,
        Metric::Decisions,
        Metric::DecisionLatency,
    ];

    /// The name CloudWatch shows.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Latency => "Latency",
            Metric::Requests => "Requests",
            Metric::ServerErrors => "ServerErrors",
            Metric::StoreFailures => "StoreFailures",
            Metric::InternalErrors => "InternalErrors",
            Metric::MailFailures => "MailFailures",
            Metric::LoginSucceeded => "LoginSucceeded",
            Metric::LoginFailed => "LoginFailed",
            Metric::MfaFailed => "MfaFailed",
            Metric::BackoffStarted => "BackoffStarted",
            Metric::Registrations => "Registrations",
            Metric::RefreshReuse => "RefreshReuse",
            Metric::MfaEnabled => "MfaEnabled",
            Metric::PasswordResets => "PasswordResets",
            Metric::ClientTokensIssued => "ClientTokensIssued",
            Metric::ClientAuthFailed => "ClientAuthFailed",
            Metric::CodesIssued => "CodesIssued",
            Metric::CodeReuse => "CodeReuse",
            Metric::PasskeysRefused => "PasskeysRefused",
            Metric::DeviceTokensIssued => "DeviceTokensIssued",
            Metric::UserCodesRefused => "UserCodesRefused",
            Metric::HookFailures => "HookFailures",
            Metric::Decisions => "Decisions",
            Metric::DecisionLatency => "DecisionLatency",
        }
    }

    /// The unit it is recorded in.
    pub fn unit(self) -> Unit {
        match self {
            Metric::Latency => Unit::Milliseconds,
            Metric::DecisionLatency => Unit::Microseconds,
            _ => Unit::Count,
        }
    }

    /// The metric of this name, if there is one.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Adds one to a count.
pub fn count(metric: Metric) {
    emit(&[], &[(metric, 1.0)]);
}

/// Turns metric lines on for this process, as `function` (the `Function` dimension:
/// `auth-api`, `authorizer`), in `namespace`.
pub fn enable(namespace: Option<String>, function: &'static str) {
    let _ = SINK.set(Sink {
        namespace: namespace
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        function,
    });
}

/// Writes one EMF line for `metrics` with the extra `dimensions` (besides `Function`), if
/// metrics are on. Each metric is recorded under `Function` alone and under `Function` with
/// the first one, two, … extra dimensions.
pub fn emit(dimensions: &[(&str, &str)], metrics: &[(Metric, f64)]) {
    let Some(sink) = SINK.get() else {
        return;
    };
    let line = document(
        crate::token::now_unix_ms(),
        &sink.namespace,
        sink.function,
        dimensions,
        metrics,
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// One EMF document.
pub fn document(
    timestamp_ms: i64,
    namespace: &str,
    function: &str,
    dimensions: &[(&str, &str)],
    metrics: &[(Metric, f64)],
) -> Value {
    // Function alone, then each extra dimension added in turn: a `Decisions` count can be
    // read per function, per decision, and per decision and reason.
    let mut sets = vec![vec!["Function"]];
    for (name, _) in dimensions {
        let mut next = sets.last().cloned().unwrap_or_default();
        next.push(*name);
        sets.push(next);
    }
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": sets,
                "Metrics": metrics
                    .iter()
                    .map(|(metric, _)| json!({"Name": metric.name(), "Unit": metric.unit().as_str()}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert("Function".into(), json!(function));
    for (name, value) in dimensions {
        root.insert((*name).into(), json!(value));
    }
    for (metric, value) in metrics {
        root.insert(metric.name().into(), json!(value));
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_names_every_dimension_and_metric_it_carries() {
        let doc = document(
            1_700_000_000_000,
            "ServerlessAuth/test",
            "authorizer",
            &[("Decision", "deny"), ("Reason", "role_refused")],
            &[(Metric::Decisions, 1.0), (Metric::DecisionLatency, 12.5)],
        );
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(directive["Namespace"], "ServerlessAuth/test");
        assert_eq!(
            directive["Dimensions"],
            json!([
                ["Function"],
                ["Function", "Decision"],
                ["Function", "Decision", "Reason"]
            ])
        );
        assert_eq!(directive["Metrics"][1]["Unit"], "Microseconds");
        assert_eq!(doc["Function"], "authorizer");
        assert_eq!(doc["Reason"], "role_refused");
        assert_eq!(doc["DecisionLatency"], 12.5);
    }

    #[test]
    fn every_metric_is_found_by_its_name() {
        for metric in Metric::ALL {
            assert_eq!(Metric::named(metric.name()), Some(metric));
        }
        assert_eq!(Metric::named("LoginFailures"), None);
    }
}
