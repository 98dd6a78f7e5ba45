//! Credentials, principals and the authentication rules (contract §2).
//!
//! Secrets are never stored: a token's secret and a user's global key are kept as an
//! HMAC-SHA256 digest keyed by the store's [`TokenKey`] (a per-data-directory secret that
//! is not in the database), so a leaked database file does not let anyone test guesses
//! at SHA-256 speed. Records written by schema version 1 hold a plain SHA-256 digest
//! ([`HashScheme::LegacySha256`]); they still authenticate, and are rewritten with the
//! key the next time they are seeded (the dev token and `--config` tokens at every start).

use crate::error::ApiError;
use hmac::{Hmac, Mac};
use inregion_model::{AccountId, PermissionSet, Role, Timestamp, TokenId};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A 32-byte digest of a secret (or of a label, for derived ids), as stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// Plain SHA-256 of `text`: how schema version 1 stored secrets
    /// ([`HashScheme::LegacySha256`]), and how stable ids are derived from labels. New
    /// secrets are hashed with [`TokenKey::hash`].
    pub fn sha256(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From lower-case hex (64 characters).
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(Self(v.try_into().ok()?))
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "digest:{}", &self.to_hex()[..12])
    }
}

/// How a stored [`SecretHash`] of a secret was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HashScheme {
    /// HMAC-SHA256 keyed by the store's [`TokenKey`] (every secret stored since schema
    /// version 2).
    #[default]
    HmacSha256,
    /// Plain SHA-256 (records written by schema version 1).
    LegacySha256,
}

/// The key secrets are hashed with (HMAC-SHA256). One per store: the SQLite store keeps
/// it in a file of its own beside the database (mode 0600), never in the database, and
/// the database keeps [`TokenKey::check_value`] to refuse a key that is not its own.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
        Self(k)
    }

    /// The key from its 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        SecretHash::from_hex(s.trim()).map(|h| Self(h.0))
    }

    /// The key as 64 hex characters (what the key file holds).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, label: &[u8], text: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length: `new_from_slice` cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(label);
        m.update(text);
        m.finalize().into_bytes().into()
    }

    /// The digest stored for `secret` ([`HashScheme::HmacSha256`]).
    pub fn hash(&self, secret: &str) -> SecretHash {
        SecretHash(self.mac(b"inregion secret v1\0", secret.as_bytes()))
    }

    /// A value that identifies the key without revealing it: stored in the database so
    /// that opening it with another key file is refused instead of locking every token
    /// out.
    pub fn check_value(&self) -> String {
        hex::encode(self.mac(b"inregion key check v1\0", b""))
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// A presented credential, as the HTTP layer read it from the headers.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <token>`.
    ApiToken(String),
    /// `X-Auth-Email` + `X-Auth-Key` (legacy global API key).
    GlobalKey {
        /// The user's e-mail.
        email: String,
        /// The global API key.
        key: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ApiToken(_) => f.write_str("ApiToken(..)"),
            Credentials::GlobalKey { email, .. } => write!(f, "GlobalKey({email}, ..)"),
        }
    }
}

/// True for token text the API accepts syntactically: `[A-Za-z0-9_-]{20,}` (§2 notes).
pub fn is_token_syntax(s: &str) -> bool {
    s.len() >= 20
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_email_syntax(s: &str) -> bool {
    match s.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
                && s.len() <= 254
        }
        None => false,
    }
}

fn is_global_key_syntax(s: &str) -> bool {
    // Real global keys are 37 lower-case hex characters; accept 32..=64 alphanumerics.
    (32..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Credentials {
    /// Reads the credential from the three headers (values as received; `None` when the
    /// header is absent). This is the header-format part of §2:
    ///
    /// - none of them → 400 / 9106;
    /// - `Authorization` not `Bearer <token-chars>` → 400 / 6003 (chain 6111);
    /// - a malformed `X-Auth-Email` / `X-Auth-Key` → 400 / 6003 (chain 6102 / 6103).
    ///
    /// `Authorization` wins when both schemes are present.
    pub fn from_headers(
        authorization: Option<&str>,
        x_auth_email: Option<&str>,
        x_auth_key: Option<&str>,
    ) -> Result<Credentials, AuthError> {
        if let Some(a) = authorization {
            let token = a
                .strip_prefix("Bearer ")
                .filter(|t| is_token_syntax(t))
                .ok_or(AuthError::MalformedAuthorization)?;
            return Ok(Credentials::ApiToken(token.to_owned()));
        }
        match (x_auth_email, x_auth_key) {
            (None, None) => Err(AuthError::MissingCredentials),
            (email, key) => {
                let email_bad = !email.is_some_and(is_email_syntax);
                let key_bad = !key.is_some_and(is_global_key_syntax);
                if email_bad || key_bad {
                    return Err(AuthError::MalformedGlobalKey { email_bad, key_bad });
                }
                Ok(Credentials::GlobalKey {
                    email: email.unwrap_or_default().to_owned(),
                    key: key.unwrap_or_default().to_owned(),
                })
            }
        }
    }
}

/// Why authentication failed (§2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 400 / 9106.
    #[error("Missing X-Auth-Key, X-Auth-Email or Authorization headers")]
    MissingCredentials,
    /// 400 / 6003 with chain 6111.
    #[error("Invalid request headers")]
    MalformedAuthorization,
    /// 400 / 6003 with chain 6102 (email) and/or 6103 (key).
    #[error("Invalid request headers")]
    MalformedGlobalKey {
        /// `X-Auth-Email` is missing or malformed.
        email_bad: bool,
        /// `X-Auth-Key` is missing or malformed.
        key_bad: bool,
    },
    /// 401 / 9109: unknown, revoked, expired or not-yet-valid token.
    #[error("Invalid access token")]
    InvalidToken,
    /// 403 / 9109: the token is restricted to other client IPs.
    #[error("Cannot use the access token from location: {}", .0.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".into()))]
    Location(Option<IpAddr>),
    /// 403 / 9103.
    #[error("Unknown X-Auth-Key or X-Auth-Email")]
    UnknownGlobalKey,
}

impl ApiError for AuthError {
    fn code(&self) -> u32 {
        match self {
            AuthError::MissingCredentials => 9106,
            AuthError::MalformedAuthorization | AuthError::MalformedGlobalKey { .. } => 6003,
            AuthError::InvalidToken | AuthError::Location(_) => 9109,
            AuthError::UnknownGlobalKey => 9103,
        }
    }
    fn http_status(&self) -> u16 {
        match self {
            AuthError::MissingCredentials
            | AuthError::MalformedAuthorization
            | AuthError::MalformedGlobalKey { .. } => 400,
            AuthError::InvalidToken => 401,
            AuthError::Location(_) | AuthError::UnknownGlobalKey => 403,
        }
    }
    fn error_chain(&self) -> Vec<(u32, String)> {
        match self {
            AuthError::MalformedAuthorization => {
                vec![(6111, "Invalid format for Authorization header".into())]
            }
            AuthError::MalformedGlobalKey { email_bad, key_bad } => {
                let mut v = Vec::new();
                if *email_bad {
                    v.push((6102, "Invalid format for X-Auth-Email header".into()));
                }
                if *key_bad {
                    v.push((6103, "Invalid format for X-Auth-Key header".into()));
                }
                v
            }
            _ => Vec::new(),
        }
    }
}

/// A stored API token. Only the digest of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Identifier (not secret).
    pub id: TokenId,
    /// Display name.
    pub name: String,
    /// Digest of the secret.
    pub secret_hash: SecretHash,
    /// How `secret_hash` was made.
    pub hash_scheme: HashScheme,
    /// Accounts the token is scoped to.
    pub accounts: Vec<AccountId>,
    /// Permission groups granted on each of those accounts.
    pub permissions: PermissionSet,
    /// Not valid before this time.
    pub not_before: Option<Timestamp>,
    /// Not valid from this time on.
    pub expires_on: Option<Timestamp>,
    /// Client IP ranges allowed to use the token; empty = anywhere.
    pub allowed_ips: Vec<IpNet>,
    /// Revoked tokens fail authentication with 401 / 9109.
    pub revoked: bool,
}

/// A stored user (for global-key credentials). Only the digest of the key is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user's e-mail (case-insensitive; stored lower-case).
    pub email: String,
    /// Digest of the global API key.
    pub key_hash: SecretHash,
    /// How `key_hash` was made.
    pub key_scheme: HashScheme,
    /// The user's role on each account.
    pub roles: BTreeMap<AccountId, Role>,
}

/// Who is calling, after authentication: the permissions held on each reachable account.
/// Built only by [`crate::ControlPlane::authenticate`] (or [`Principal::system`] for
/// trusted in-process callers such as the simulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    subject: Subject,
    grants: Grants,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Grants {
    /// Every permission on every account (trusted in-process callers).
    All,
    /// Per-account permissions.
    Accounts(BTreeMap<AccountId, PermissionSet>),
}

/// Who a [`Principal`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An API token.
    Token(TokenId),
    /// A user authenticated by global key.
    User(String),
    /// A trusted in-process caller (simulator, seeding).
    System,
}

impl Principal {
    /// A principal that holds every permission on every account: for trusted in-process
    /// callers (the simulator applying scenario operations through the same rules). The
    /// entitlement and validation rules still apply.
    pub fn system() -> Self {
        Self {
            subject: Subject::System,
            grants: Grants::All,
        }
    }

    pub(crate) fn new(subject: Subject, grants: BTreeMap<AccountId, PermissionSet>) -> Self {
        Self {
            subject,
            grants: Grants::Accounts(grants),
        }
    }

    /// Who this is.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The permissions held on `account`; `None` when the account is not reachable.
    pub fn permissions_on(&self, account: &AccountId) -> Option<PermissionSet> {
        match &self.grants {
            Grants::All => Some(PermissionSet::all()),
            Grants::Accounts(m) => m.get(account).copied(),
        }
    }

    /// The accounts this principal reaches (`None` = all: the system principal).
    pub fn accounts(&self) -> Option<Vec<AccountId>> {
        match &self.grants {
            Grants::All => None,
            Grants::Accounts(m) => Some(m.keys().cloned().collect()),
        }
    }
}

/// The keys a stored digest may have been made with: the store's own key first, then
/// the keys adopted with restored snapshots (digests made elsewhere keep working).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRing<'a> {
    /// The store's key: every new digest is made with it.
    pub(crate) primary: &'a TokenKey,
    /// Keys adopted from restored snapshots.
    pub(crate) adopted: &'a [TokenKey],
}

impl KeyRing<'_> {
    fn keys(&self) -> impl Iterator<Item = &TokenKey> {
        std::iter::once(self.primary).chain(self.adopted)
    }

    /// True when `digest` is the digest of `secret` as `scheme` stores it, under any key
    /// of the ring.
    fn matches(&self, scheme: HashScheme, digest: &SecretHash, secret: &str) -> bool {
        match scheme {
            HashScheme::LegacySha256 => *digest == SecretHash::sha256(secret),
            HashScheme::HmacSha256 => self.keys().any(|k| *digest == k.hash(secret)),
        }
    }
}

/// The token whose secret is `secret`, whichever scheme and key stored it (keyed
/// digests first; a plain SHA-256 only for records that were stored that way).
pub(crate) fn find_token<'a>(
    tokens: &'a std::collections::BTreeMap<SecretHash, TokenRecord>,
    ring: KeyRing<'_>,
    secret: &str,
) -> Option<&'a TokenRecord> {
    ring.keys()
        .find_map(|k| {
            tokens
                .get(&k.hash(secret))
                .filter(|t| t.hash_scheme == HashScheme::HmacSha256)
        })
        .or_else(|| {
            tokens
                .get(&SecretHash::sha256(secret))
                .filter(|t| t.hash_scheme == HashScheme::LegacySha256)
        })
}

/// Authenticates against the stored tokens and users (pure: `now` is an argument).
pub(crate) fn authenticate(
    tokens: &std::collections::BTreeMap<SecretHash, TokenRecord>,
    users: &std::collections::BTreeMap<String, UserRecord>,
    ring: KeyRing<'_>,
    creds: &Credentials,
    client_ip: Option<IpAddr>,
    now: Timestamp,
) -> Result<Principal, AuthError> {
    match creds {
        Credentials::ApiToken(secret) => {
            if !is_token_syntax(secret) {
                return Err(AuthError::MalformedAuthorization);
            }
            let t = find_token(tokens, ring, secret).ok_or(AuthError::InvalidToken)?;
            if t.revoked
                || t.not_before.is_some_and(|nb| now < nb)
                || t.expires_on.is_some_and(|e| now >= e)
            {
                return Err(AuthError::InvalidToken);
            }
            if !t.allowed_ips.is_empty()
                && !client_ip.is_some_and(|ip| t.allowed_ips.iter().any(|n| n.contains(&ip)))
            {
                return Err(AuthError::Location(client_ip));
            }
            let grants = t
                .accounts
                .iter()
                .map(|a| (a.clone(), t.permissions))
                .collect();
            Ok(Principal::new(Subject::Token(t.id.clone()), grants))
        }
        Credentials::GlobalKey { email, key } => {
            let u = users
                .get(&email.to_ascii_lowercase())
                .filter(|u| ring.matches(u.key_scheme, &u.key_hash, key))
                .ok_or(AuthError::UnknownGlobalKey)?;
            let grants = u
                .roles
                .iter()
                .map(|(a, r)| (a.clone(), r.permissions()))
                .collect();
            Ok(Principal::new(Subject::User(u.email.clone()), grants))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inregion_model::Permission;
    use std::collections::BTreeMap;

    const TOKEN: &str = "abcdefghij0123456789_-XYZ";

    fn key() -> TokenKey {
        TokenKey::from_hex(&"ab".repeat(32)).unwrap()
    }

    fn ring(k: &TokenKey) -> KeyRing<'_> {
        KeyRing {
            primary: k,
            adopted: &[],
        }
    }

    fn setup() -> (
        BTreeMap<SecretHash, TokenRecord>,
        BTreeMap<String, UserRecord>,
        AccountId,
    ) {
        let acct = AccountId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let t = TokenRecord {
            id: TokenId::random(),
            name: "t".into(),
            secret_hash: key().hash(TOKEN),
            hash_scheme: HashScheme::HmacSha256,
            accounts: vec![acct.clone()],
            permissions: [Permission::DlsRead].into_iter().collect(),
            not_before: Some(Timestamp::from_secs(100)),
            expires_on: Some(Timestamp::from_secs(200)),
            allowed_ips: vec!["192.0.2.0/24".parse().unwrap()],
            revoked: false,
        };
        let u = UserRecord {
            email: "ops@example.com".into(),
            // A user stored by schema version 1: plain SHA-256.
            key_hash: SecretHash::sha256("0123456789abcdef0123456789abcdef01234"),
            key_scheme: HashScheme::LegacySha256,
            roles: [(acct.clone(), Role::Administrator)].into_iter().collect(),
        };
        (
            [(t.secret_hash, t)].into_iter().collect(),
            [(u.email.clone(), u)].into_iter().collect(),
            acct,
        )
    }

    #[test]
    fn header_formats() {
        use AuthError::*;
        assert_eq!(
            Credentials::from_headers(None, None, None).unwrap_err(),
            MissingCredentials
        );
        assert_eq!(
            Credentials::from_headers(Some("Basic abc"), None, None).unwrap_err(),
            MalformedAuthorization
        );
        assert_eq!(
            Credentials::from_headers(Some("Bearer short"), None, None).unwrap_err(),
            MalformedAuthorization
        );
        assert_eq!(
            Credentials::from_headers(Some(&format!("Bearer {TOKEN}")), None, None).unwrap(),
            Credentials::ApiToken(TOKEN.into())
        );
        let e = Credentials::from_headers(None, Some("nope"), Some("x")).unwrap_err();
        assert_eq!(e.code(), 6003);
        assert_eq!(
            e.error_chain().iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![6102, 6103]
        );
        let e = Credentials::from_headers(None, Some("a@b.io"), None).unwrap_err();
        assert_eq!(e.error_chain()[0].0, 6103);
        assert!(Credentials::from_headers(
            None,
            Some("a@b.io"),
            Some("0123456789abcdef0123456789abcdef01234")
        )
        .is_ok());
    }

    #[test]
    fn token_rules() {
        let (t, u, acct) = setup();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Timestamp::from_secs(150);
        let creds = Credentials::ApiToken(TOKEN.into());
        let p = authenticate(&t, &u, ring(&key()), &creds, Some(ip), now).unwrap();
        assert!(p
            .permissions_on(&acct)
            .unwrap()
            .contains(Permission::DlsRead));
        assert!(p.permissions_on(&AccountId::random()).is_none());
        let e =
            |c: &Credentials, ip, now| authenticate(&t, &u, ring(&key()), c, ip, now).unwrap_err();
        assert_eq!(
            e(&creds, Some(ip), Timestamp::from_secs(99)),
            AuthError::InvalidToken
        );
        assert_eq!(
            e(&creds, Some(ip), Timestamp::from_secs(200)),
            AuthError::InvalidToken
        );
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let loc = e(&creds, Some(other), now);
        assert_eq!((loc.code(), loc.http_status()), (9109, 403));
        assert_eq!(e(&creds, None, now), AuthError::Location(None));
        let unknown = e(&Credentials::ApiToken("z".repeat(40)), Some(ip), now);
        assert_eq!((unknown.code(), unknown.http_status()), (9109, 401));
        let mut revoked = t.clone();
        revoked.values_mut().for_each(|r| r.revoked = true);
        assert_eq!(
            authenticate(&revoked, &u, ring(&key()), &creds, Some(ip), now).unwrap_err(),
            AuthError::InvalidToken
        );
    }

    #[test]
    fn global_key_rules() {
        let (t, u, acct) = setup();
        let ok = Credentials::GlobalKey {
            email: "OPS@example.com".into(),
            key: "0123456789abcdef0123456789abcdef01234".into(),
        };
        let p = authenticate(&t, &u, ring(&key()), &ok, None, Timestamp::EPOCH).unwrap();
        assert_eq!(p.permissions_on(&acct), Some(PermissionSet::all()));
        let bad = Credentials::GlobalKey {
            email: "ops@example.com".into(),
            key: "0123456789abcdef0123456789abcdef00000".into(),
        };
        let e = authenticate(&t, &u, ring(&key()), &bad, None, Timestamp::EPOCH).unwrap_err();
        assert_eq!((e.code(), e.http_status()), (9103, 403));
    }

    /// A digest made with another key, or a plain SHA-256 digest on a record marked as
    /// keyed, never authenticates; a record marked legacy authenticates by plain SHA-256.
    #[test]
    fn hash_schemes_do_not_mix() {
        let (mut t, u, _) = setup();
        let creds = Credentials::ApiToken(TOKEN.into());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Timestamp::from_secs(150);
        let other = TokenKey::from_hex(&"cd".repeat(32)).unwrap();
        assert_ne!(other.hash(TOKEN), key().hash(TOKEN));
        assert_ne!(key().hash(TOKEN), SecretHash::sha256(TOKEN));
        assert_ne!(other.check_value(), key().check_value());
        assert_eq!(
            authenticate(&t, &u, ring(&other), &creds, Some(ip), now).unwrap_err(),
            AuthError::InvalidToken
        );
        let mut rec = t.pop_first().unwrap().1;
        rec.secret_hash = SecretHash::sha256(TOKEN);
        t.insert(rec.secret_hash, rec.clone());
        assert_eq!(
            authenticate(&t, &u, ring(&key()), &creds, Some(ip), now).unwrap_err(),
            AuthError::InvalidToken,
            "a keyed record must not match a plain digest"
        );
        rec.hash_scheme = HashScheme::LegacySha256;
        t.insert(rec.secret_hash, rec.clone());
        assert!(authenticate(&t, &u, ring(&key()), &creds, Some(ip), now).is_ok());
        // A digest made with an adopted key (a restored snapshot's) verifies too.
        t.clear();
        rec.secret_hash = other.hash(TOKEN);
        rec.hash_scheme = HashScheme::HmacSha256;
        t.insert(rec.secret_hash, rec);
        let k = key();
        let both = KeyRing {
            primary: &k,
            adopted: std::slice::from_ref(&other),
        };
        assert!(authenticate(&t, &u, both, &creds, Some(ip), now).is_ok());
        assert!(authenticate(&t, &u, ring(&k), &creds, Some(ip), now).is_err());
        assert_eq!(format!("{:?}", key()), "TokenKey(..)");
    }
}
