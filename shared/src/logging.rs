//! Log setup for both Lambdas: the Lambda runtime's defaults (`AWS_LAMBDA_LOG_LEVEL` or
//! `RUST_LOG`, default INFO; `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines), except that no
//! crate but ours ever logs at TRACE, whatever the level or the `RUST_LOG` directives say.
//!
//! At TRACE, lambda_runtime prints every raw invocation event (passwords, refresh tokens and
//! `Authorization` headers inside), and the AWS SDK and the HTTP stack print whole request and
//! response bodies (password hashes, keys). Our own crates log no secret at any level.

use std::io::IsTerminal as _;
use std::str::FromStr;

use tracing::Level;
use tracing::level_filters::STATIC_MAX_LEVEL;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The crates of this workspace: the only targets allowed to log at TRACE.
const OWN_CRATES: [&str; 6] = [
    "accounts",
    "auth_api",
    "authorizer",
    "session_authorizer",
    "shared",
    "local_api",
];

/// Whether `target` belongs to one of [`OWN_CRATES`].
fn is_own(target: &str) -> bool {
    OWN_CRATES.iter().any(|own| {
        target
            .strip_prefix(own)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether a span or event may be logged at all: anything but TRACE from another crate.
pub fn allowed(level: &Level, target: &str) -> bool {
    *level != Level::TRACE || is_own(target)
}

/// The level filter: the configured level (and any `RUST_LOG` directives), default INFO.
/// [`allowed`] applies on top of it.
///
/// Levels above what the binary was built with (release builds have no TRACE callsites) are
/// lowered to it: tracing-subscriber would otherwise print a warning about them to stderr,
/// coloured whatever stderr is.
pub fn filter(level: Option<&str>) -> EnvFilter {
    let level = level
        .and_then(|l| LevelFilter::from_str(l).ok())
        .unwrap_or(LevelFilter::INFO)
        .min(STATIC_MAX_LEVEL);
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(within_static_max(&directives, STATIC_MAX_LEVEL))
}

/// `RUST_LOG`-style `directives` with every level above `max` lowered to `max`.
fn within_static_max(directives: &str, max: LevelFilter) -> String {
    directives
        .split(',')
        .map(|directive| {
            let (head, level) = match directive.rsplit_once('=') {
                Some((head, level)) => (Some(head), level),
                None => (None, directive),
            };
            match LevelFilter::from_str(level.trim()) {
                Ok(parsed) if parsed > max => match head {
                    Some(head) => format!("{head}={max}"),
                    None => max.to_string(),
                },
                _ => directive.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Installs the global subscriber writing to stdout, as Lambda expects. Colour only when
/// stdout is a terminal and `NO_COLOR` is unset: a log file or CloudWatch gets plain text.
pub fn init() {
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (level, json) = from_env();
    install(std::io::stdout, level.as_deref(), json, ansi);
}

/// Installs the global subscriber writing to `writer` (never in colour), with the level and
/// format Lambda's variables say.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (level, json) = from_env();
    init_with(writer, level.as_deref(), json);
}

/// The level (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`) and whether to write JSON
/// (`AWS_LAMBDA_LOG_FORMAT=json`).
fn from_env() -> (Option<String>, bool) {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    (level, json)
}

/// Installs the global subscriber writing to `writer` at `level` (`RUST_LOG` directives are
/// still read), as JSON lines if `json`, never in colour.
pub fn init_with<W>(writer: W, level: Option<&str>, json: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(writer, level, json, false);
}

fn install<W>(writer: W, level: Option<&str>, json: bool, ansi: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let cap = filter_fn(|meta| allowed(meta.level(), meta.target()));
    let filter = filter(level).and(cap);
    let layer = fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(ansi)
        .with_writer(writer);
    let layer = if json {
        layer.json().with_filter(filter).boxed()
    } else {
        layer.with_filter(filter).boxed()
    };
    tracing_subscriber::registry().with(layer).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_above_the_static_maximum_are_lowered_to_it() {
        let max = LevelFilter::DEBUG;
        assert_eq!(within_static_max("trace", max), "debug");
        assert_eq!(
            within_static_max("auth_api=trace,info,shared[x]=TRACE", max),
            "auth_api=debug,info,shared[x]=debug"
        );
        assert_eq!(within_static_max("warn", max), "warn");
        assert_eq!(within_static_max("", max), "");
        assert_eq!(within_static_max("trace", LevelFilter::TRACE), "trace");
    }

    #[test]
    fn only_our_own_crates_may_log_at_trace() {
        for own in [
            "auth_api",
            "auth_api::routes::login",
            "accounts::flows::login",
            "authorizer",
            "shared::token",
        ] {
            assert!(allowed(&Level::TRACE, own), "{own}");
        }
        for other in [
            "lambda_runtime",
            "lambda_runtime::layers::api_response",
            "lambda_http",
            "aws_smithy_runtime",
            "hyper_util::client",
            "auth_apix",
            "sharedlib",
        ] {
            assert!(!allowed(&Level::TRACE, other), "{other}");
            assert!(allowed(&Level::DEBUG, other), "{other}");
        }
    }
}
