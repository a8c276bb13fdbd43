//! Log setup for both Lambdas: the Lambda runtime's defaults (`AWS_LAMBDA_LOG_LEVEL` or
//! `RUST_LOG`, default INFO; `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines), except that the
//! AWS SDK and the HTTP stack never log below DEBUG: at TRACE they print whole request and
//! response bodies, which hold password hashes and keys.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Targets that print raw HTTP bodies at TRACE: never more verbose than DEBUG.
const BODY_LOGGING_TARGETS: [&str; 8] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_sdk_ssm",
    "hyper",
    "hyper_util",
    "h2",
];

/// The filter: the configured level, with [`BODY_LOGGING_TARGETS`] capped at DEBUG.
pub fn filter(level: Option<&str>) -> EnvFilter {
    let level = level
        .and_then(|l| LevelFilter::from_str(l).ok())
        .unwrap_or(LevelFilter::INFO);
    let mut filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let capped = level.min(LevelFilter::DEBUG);
    for target in BODY_LOGGING_TARGETS {
        if let Ok(directive) = format!("{target}={capped}").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global subscriber writing to stdout, as Lambda expects.
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// Installs the global subscriber writing to `writer`.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level.as_deref()))
        .with_writer(writer);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
