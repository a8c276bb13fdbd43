//! The AWS SDK configuration of the Lambda, read from its environment alone.
//!
//! Lambda hands a function its region and its execution role's credentials as environment
//! variables (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
//! valid for the life of the execution environment. auth-api reads them directly rather than
//! linking aws-config's provider chain (profile files, SSO, STS web identity, IMDS, ECS), which a
//! Lambda never reaches and which cost binary size and cold-start work (BENCHMARKS.md).
//! Endpoints follow the SDK's own variables: `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider, SharedHttpClient,
};
use aws_smithy_http_client::HttpClientError;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_types::SdkConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use shared::config::{self, ConfigError, Env};

/// The services the functions call, by their SDK service ids.
const SERVICES: [&str; 5] = ["DynamoDB", "SSM", "SESv2", "EventBridge", "Lambda"];

/// The SDK configuration for `env`: its region, its credentials, any endpoint overrides, and
/// the bounds of [`timeouts`] and [`retries`]. A missing region or credential is a
/// [`ConfigError`] at cold start, not a failure at the first request.
pub fn from_env(env: &dyn Env) -> Result<SdkConfig, ConfigError> {
    let region = config::optional(env, "AWS_REGION")
        .or_else(|| config::optional(env, "AWS_DEFAULT_REGION"))
        .ok_or_else(|| ConfigError::new("AWS_REGION", "is required but not set"))?;
    let credentials = Credentials::new(
        config::required(env, "AWS_ACCESS_KEY_ID")?,
        config::required(env, "AWS_SECRET_ACCESS_KEY")?,
        config::optional(env, "AWS_SESSION_TOKEN"),
        None,
        "environment",
    );
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        // The TLS context cannot fail to build today; if it ever did, the system's roots
        // still verify AWS endpoints, only later in the cold start.
        .http_client(lambda_https_client().unwrap_or_else(|_| https_client()))
        .service_config(ServiceEndpoints::from_env(env))
        .timeout_config(timeouts())
        .retry_config(retries());
    builder.set_endpoint_url(config::optional(env, "AWS_ENDPOINT_URL"));
    Ok(builder.build())
}

/// The SDK's HTTPS client: hyper and rustls, as the SDK's default, with ring for the
/// cryptography instead of the default's aws-lc, which is larger and slower to build. Trusted
/// roots are the system's (as the default's): for local-api on a developer's machine, whose
/// network may need its own roots.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The Lambda's HTTPS client: as [`https_client`], but trusting Mozilla's root certificates,
/// compiled in. The system's roots would be read from every file of `/etc/ssl/certs` when
/// the first client is built, the largest part of a cold start; AWS endpoints need nothing
/// beyond Mozilla's roots.
pub fn lambda_https_client() -> Result<SharedHttpClient, HttpClientError> {
    let mut roots = TrustStore::empty().with_native_roots(false);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        roots.add_pem_certificate(pem(cert));
    }
    let context = TlsContext::builder().with_trust_store(roots).build()?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
}

/// A DER certificate as PEM, the form the SDK's trust store takes.
fn pem(der: &[u8]) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 60);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

/// Connect within 500 ms, each attempt within 1 s, the whole operation (retries included)
/// within 2.5 s: a down or slow dependency answers well inside API Gateway's 29 s and the 3 s
/// promised to clients.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(1))
        .operation_timeout(Duration::from_millis(2500))
        .build()
}

/// Three attempts with short backoff: throttling and blips are retried inside the bound.
pub fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_millis(400))
}

/// `AWS_ENDPOINT_URL_<SERVICE>` for each service auth-api calls, read at cold start: what the
/// generated clients ask their shared configuration for.
#[derive(Debug, Default)]
struct ServiceEndpoints(HashMap<String, String>);

impl ServiceEndpoints {
    fn from_env(env: &dyn Env) -> Self {
        let mut found = HashMap::new();
        for service in SERVICES {
            let name = endpoint_variable(service);
            if let Some(url) = env.var(&name).filter(|url| !url.trim().is_empty()) {
                found.insert(name, url);
            }
        }
        Self(found)
    }
}

impl LoadServiceConfig for ServiceEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != "AWS_ENDPOINT_URL" {
            return None;
        }
        self.0.get(&endpoint_variable(key.service_id())).cloned()
    }
}

/// The SDK's service-specific endpoint variable: the service id upper-cased, spaces as `_`.
fn endpoint_variable(service_id: &str) -> String {
    format!(
        "AWS_ENDPOINT_URL_{}",
        service_id.to_ascii_uppercase().replace(' ', "_")
    )
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::ProvideCredentials;
    use tokio::net::TcpListener;

    use super::*;

    fn lambda_env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "session"),
        ])
    }

    /// Which listener the request of `call` (a real SDK client built from the configuration
    /// under test) connects to first.
    async fn reached(
        call: impl Future<Output = ()>,
        service: &TcpListener,
        general: &TcpListener,
    ) -> &'static str {
        tokio::select! {
            () = call => "neither",
            accepted = service.accept() => { accepted.unwrap(); "service endpoint" }
            accepted = general.accept() => { accepted.unwrap(); "general endpoint" }
        }
    }

    #[tokio::test]
    async fn reads_region_and_the_roles_credentials_as_lambda_sets_them() {
        let sdk = from_env(&lambda_env()).unwrap();
        assert_eq!(sdk.region().map(Region::as_ref), Some("eu-west-1"));
        let credentials = sdk
            .credentials_provider()
            .unwrap()
            .provide_credentials()
            .await
            .unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("session"));
        assert_eq!(sdk.endpoint_url(), None);
        assert!(ServiceEndpoints::from_env(&lambda_env()).0.is_empty());
    }

    #[tokio::test]
    async fn service_endpoints_come_before_the_general_one() {
        let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let general = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service_url = format!("http://{}", service.local_addr().unwrap());
        let general_url = format!("http://{}", general.local_addr().unwrap());
        let mut env = lambda_env();
        env.insert("AWS_ENDPOINT_URL_DYNAMODB", &service_url);
        env.insert("AWS_ENDPOINT_URL", &general_url);
        let sdk = from_env(&env).unwrap();

        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let list_tables = async {
            let _ = dynamodb.list_tables().send().await;
        };
        assert_eq!(
            reached(list_tables, &service, &general).await,
            "service endpoint"
        );
        // SSM has no variable of its own here, so it takes the general one.
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let get_parameter = async {
            let _ = ssm.get_parameter().name("key").send().await;
        };
        assert_eq!(
            reached(get_parameter, &service, &general).await,
            "general endpoint"
        );
    }

    #[test]
    fn a_missing_region_or_credential_names_the_variable() {
        for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            let mut env = lambda_env();
            env.remove(missing);
            assert_eq!(from_env(&env).unwrap_err().variable, missing);
        }
        let mut env = lambda_env();
        env.remove("AWS_REGION");
        env.insert("AWS_DEFAULT_REGION", "us-west-2");
        let sdk = from_env(&env).unwrap();
        assert_eq!(sdk.region().map(Region::as_ref), Some("us-west-2"));
    }
}
