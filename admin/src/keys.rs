//! `auth-admin keys`: signing keys for rotation, and the `PublicJwks` value that names them.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use shared::{KeySet, SigningKey};

use crate::exit;
use crate::failure::Failure;
use crate::output::Format;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyKind {
    /// Ed25519, signing EdDSA: small and fast (the default).
    Ed25519,
    /// RSA, signing RS256: for gateways' built-in JWT authorizers (HTTP API accepts only RSA).
    Rsa,
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Generate a signing key: the private key (PEM) goes to a new file (mode 0600) or to an
    /// SSM SecureString parameter, never to stdout; its public JWK (kid = RFC 7638 thumbprint)
    /// is printed.
    Generate {
        /// The key's kind.
        #[arg(long, value_enum, default_value = "ed25519")]
        kind: KeyKind,
        /// RSA modulus size in bits (2048 to 4096).
        #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u16).range(2048..=4096))]
        bits: u16,
        /// Write the private key to this new file (refused if it exists).
        #[arg(
            long,
            required_unless_present = "ssm_parameter",
            conflicts_with = "ssm_parameter"
        )]
        out: Option<PathBuf>,
        /// Store the private key as this SSM SecureString parameter (e.g.
        /// /serverless-auth/jwt-signing-key-2026-12), so it never touches a disk.
        #[arg(long)]
        ssm_parameter: Option<String>,
        /// Replace the SSM parameter if it exists.
        #[arg(long, requires = "ssm_parameter")]
        overwrite: bool,
    },
    /// Build the PublicJwks value from public keys: files holding a JWK, a JWKS, or a private
    /// PEM (its public half is taken); checked as the functions check it at cold start.
    Jwks {
        /// The key files, the signing key's first by convention; `-` reads stdin.
        #[arg(required = true)]
        keys: Vec<PathBuf>,
        /// Print the value as one shell word for `sam deploy --parameter-overrides`,
        /// quoted so SAM CLI receives the whole JSON: 'PublicJwks='\''{…}'\'''.
        #[arg(long)]
        sam: bool,
    },
}

/// Runs a `keys` command.
pub async fn keys(
    command: KeysCommand,
    sdk: &aws_config::SdkConfig,
    format: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Failure> {
    match command {
        KeysCommand::Generate {
            kind,
            bits,
            out: file,
            ssm_parameter,
            overwrite,
        } => {
            let pem = private_pem(kind, usize::from(bits))?;
            let key = SigningKey::from_pem(&pem, None)
                .map_err(|e| Failure::new(exit::FAILED, format!("the new key: {e}")))?;
            let jwk = public_jwk(&key)?;
            match (&file, &ssm_parameter) {
                (Some(path), _) => write_private(path, &pem)?,
                (None, Some(name)) => store_in_ssm(sdk, name, &pem, overwrite).await?,
                (None, None) => {
                    return Err(Failure::new(
                        exit::USAGE,
                        "pass --out FILE or --ssm-parameter NAME",
                    ));
                }
            }
            let place = match (&file, &ssm_parameter) {
                (Some(path), _) => format!("file {} (mode 0600)", path.display()),
                (_, Some(name)) => format!("SSM SecureString {name}"),
                _ => String::new(),
            };
            writeln!(
                err,
                "auth-admin: private key ({}) in {place}; kid {}",
                match kind {
                    KeyKind::Ed25519 => "Ed25519, EdDSA".to_owned(),
                    KeyKind::Rsa => format!("RSA {bits}, RS256"),
                },
                key.kid()
            )?;
            let text = serde_json::to_string(&jwk).unwrap_or_default();
            match format {
                Format::Json => writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&jwk).unwrap_or_default()
                )?,
                Format::Table => writeln!(out, "{text}")?,
            }
            Ok(())
        }
        KeysCommand::Jwks { keys, sam } => {
            let mut jwks = Vec::new();
            for path in &keys {
                jwks.extend(read_public_keys(path)?);
            }
            let mut kids = std::collections::BTreeSet::new();
            for jwk in &jwks {
                if let Some(kid) = jwk.get("kid").and_then(Value::as_str)
                    && !kids.insert(kid.to_owned())
                {
                    return Err(Failure::new(
                        exit::USAGE,
                        format!("kid {kid} is given twice: each key once"),
                    ));
                }
            }
            let document = json!({"keys": jwks});
            let text = serde_json::to_string(&document).unwrap_or_default();
            // What the functions will do with it: parse, refuse private members, short RSA
            // keys, clashing kids.
            KeySet::from_jwks_json(&text)
                .map_err(|e| Failure::new(exit::USAGE, format!("not a usable PublicJwks: {e}")))?;
            if sam {
                writeln!(out, "{}", shell_word(&format!("PublicJwks='{text}'")))?;
            } else {
                writeln!(out, "{text}")?;
            }
            Ok(())
        }
    }
}

fn private_pem(kind: KeyKind, bits: usize) -> Result<String, Failure> {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let failed = |e: &dyn std::fmt::Display| {
        Failure::new(exit::FAILED, format!("cannot generate the key: {e}"))
    };
    let pem = match kind {
        KeyKind::Ed25519 => ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| failed(&e))?,
        KeyKind::Rsa => {
            use rsa::pkcs8::EncodePrivateKey as _;
            rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
                .map_err(|e| failed(&e))?
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .map_err(|e| failed(&e))?
        }
    };
    Ok(pem.to_string())
}

fn public_jwk(key: &SigningKey) -> Result<Value, Failure> {
    let jwk = key
        .verification_key()
        .jwk()
        .cloned()
        .ok_or_else(|| Failure::new(exit::FAILED, "the key has no public JWK"))?;
    serde_json::to_value(jwk).map_err(|e| Failure::new(exit::FAILED, e.to_string()))
}

/// Creates `path` with mode 0600 (never an existing file) and writes `pem` to it.
fn write_private(path: &Path, pem: &str) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        Failure::new(
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                exit::USAGE
            } else {
                exit::FAILED
            },
            format!(
                "cannot create {}: {e} (it must not exist yet)",
                path.display()
            ),
        )
    })?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            Failure::new(
                exit::FAILED,
                format!("cannot write {}: {e}", path.display()),
            )
        })
}

async fn store_in_ssm(
    sdk: &aws_config::SdkConfig,
    name: &str,
    pem: &str,
    overwrite: bool,
) -> Result<(), Failure> {
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(pem)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(overwrite)
        .send()
        .await
        .map_err(|e| {
            let exists = e
                .as_service_error()
                .is_some_and(|s| s.is_parameter_already_exists());
            Failure::new(
                if exists { exit::USAGE } else { exit::FAILED },
                if exists {
                    format!("SSM parameter {name} exists: pass --overwrite to replace it")
                } else {
                    format!(
                        "cannot store SSM parameter {name}: {}",
                        shared::error_chain(&e)
                    )
                },
            )
        })?;
    Ok(())
}

/// The public JWKs in `path` (`-`: stdin): a JWK, a JWKS, or a private PEM.
fn read_public_keys(path: &Path) -> Result<Vec<Value>, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| Failure::new(exit::USAGE, format!("cannot read {}: {e}", path.display())))?;
    if text.contains("-----BEGIN") {
        let key = SigningKey::from_pem(&text, None).map_err(|e| {
            Failure::new(
                exit::USAGE,
                format!("{}: not a usable private key: {e}", path.display()),
            )
        })?;
        return Ok(vec![public_jwk(&key)?]);
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("{}: neither JSON nor a PEM key: {e}", path.display()),
        )
    })?;
    match value.get("keys").and_then(Value::as_array) {
        Some(keys) => Ok(keys.clone()),
        None if value.get("kty").is_some() => Ok(vec![value]),
        None => Err(Failure::new(
            exit::USAGE,
            format!("{}: a JSON object without kty or keys", path.display()),
        )),
    }
}

/// `text` as one POSIX shell word: single quotes, each `'` inside written `'\''`.
pub fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
