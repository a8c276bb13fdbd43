//! A software authenticator and WebAuthn client (1Password's passkey-rs) for the passkey
//! tests: the other side of every ceremony, implemented by someone else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use passkey_authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey_client::{Client, DefaultClientData};
use passkey_crypto::AvailableBackend;
use passkey_types::Passkey;
use passkey_types::ctap2::make_credential::{
    Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use passkey_types::ctap2::{Aaguid, Ctap2Error, StatusCode};
use passkey_types::webauthn::PublicKeyCredentialDescriptor;
use passkey_types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use serde_json::{Value, json};

/// A user at the authenticator: always present; verified (PIN or biometric) while
/// `verifies` is on.
#[derive(Clone)]
pub struct User {
    verifies: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl UserValidationMethod for User {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: verification && self.verifies.load(Ordering::SeqCst),
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// The authenticator's credentials, discoverable ones found by RP ID alone (passkey-rs's own
/// MemoryStore finds credentials only by an allow list).
#[derive(Default)]
pub struct Credentials(pub Vec<Passkey>);

#[async_trait::async_trait]
impl CredentialStore for Credentials {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        allow: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        let found: Vec<Passkey> = self
            .0
            .iter()
            .filter(|p| p.rp_id == rp_id)
            .filter(|p| match allow {
                Some(list) if !list.is_empty() => list.iter().any(|d| *d.id == *p.credential_id),
                _ => p.user_handle.is_some(),
            })
            .cloned()
            .collect();
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        credential: Passkey,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        self.0.push(credential);
        Ok(())
    }

    async fn update_credential(&mut self, credential: &Passkey) -> Result<(), StatusCode> {
        for stored in &mut self.0 {
            if stored.credential_id == credential.credential_id {
                *stored = credential.clone();
            }
        }
        Ok(())
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::Full,
        }
    }
}

type SoftClient = Client<Credentials, User, AvailableBackend, public_suffix::PublicSuffixList, ()>;

/// One authenticator with its credentials, and the browser in front of it.
pub struct SoftKey {
    /// Always `Some` between calls (the client's settings are set by value).
    client: Option<SoftClient>,
    user: User,
}

impl SoftKey {
    /// A new authenticator that verifies its user; with `counter`, its credentials count
    /// their signatures.
    pub fn new(counter: bool) -> Self {
        let user = User {
            verifies: Arc::new(AtomicBool::new(true)),
        };
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            Credentials::default(),
            user.clone(),
            AvailableBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(counter);
        Self {
            client: Some(Client::new(authenticator)),
            user,
        }
    }

    /// Whether the authenticator verifies its user from now on (off: the client does not ask
    /// for it when the relying party only prefers it, as a browser does before a plain
    /// security key).
    pub fn verify_user(&mut self, on: bool) {
        self.user.verifies.store(on, Ordering::SeqCst);
        self.client = self
            .client
            .take()
            .map(|c| c.user_verification_when_preferred(on));
    }

    fn client(&mut self) -> &mut SoftClient {
        self.client
            .as_mut()
            .expect("the client is put back after each change")
    }

    /// The credentials it holds, as stored (the tests move counters back).
    pub fn store_mut(&mut self) -> &mut Credentials {
        self.client().authenticator_mut().store_mut()
    }

    /// `navigator.credentials.create()` with `options` (the server's
    /// `PublicKeyCredentialCreationOptionsJSON`) on a page at `origin`: the
    /// `RegistrationResponseJSON` the page would send.
    pub async fn create(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        let request: CredentialCreationOptions =
            serde_json::from_value(json!({ "publicKey": options })).map_err(|e| e.to_string())?;
        let origin = url::Url::parse(origin).map_err(|e| e.to_string())?;
        let created = self
            .client()
            .register(&origin, request, DefaultClientData)
            .await
            .map_err(|e| format!("{e:?}"))?;
        serde_json::to_value(created)
            .map(level_3_json)
            .map_err(|e| e.to_string())
    }

    /// `navigator.credentials.get()` with `options` (`PublicKeyCredentialRequestOptionsJSON`)
    /// on a page at `origin`: the `AuthenticationResponseJSON` the page would send.
    pub async fn get(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        let request: CredentialRequestOptions =
            serde_json::from_value(json!({ "publicKey": options })).map_err(|e| e.to_string())?;
        let origin = url::Url::parse(origin).map_err(|e| e.to_string())?;
        let got = self
            .client()
            .authenticate(&origin, request, DefaultClientData)
            .await
            .map_err(|e| format!("{e:?}"))?;
        serde_json::to_value(got)
            .map(level_3_json)
            .map_err(|e| e.to_string())
    }
}

/// passkey-types serializes bytes as arrays of numbers; the WebAuthn Level 3 JSON a browser's
/// `toJSON()` gives has them as unpadded base64url.
fn level_3_json(value: Value) -> Value {
    use base64::Engine as _;
    match value {
        Value::Array(items)
            if !items.is_empty() && items.iter().all(|v| v.as_u64().is_some_and(|n| n < 256)) =>
        {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|v| v.as_u64())
                .map(|n| n as u8)
                .collect();
            Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(level_3_json).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, level_3_json(v))).collect())
        }
        other => other,
    }
}
