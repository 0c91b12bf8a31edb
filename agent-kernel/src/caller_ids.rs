//! How the ids an application supplies — principal ids and session ids — are
//! recorded wherever the kernel reports them: span attributes, the budget
//! gauge's `session_id` label, the audit bridge's spans and the kernel's log
//! lines. One setting, [`CallerIdRecording`], chosen on
//! [`KernelBuilder::caller_ids`](crate::KernelBuilder::caller_ids).
//!
//! These ids are whatever the application passes: an e-mail address as a
//! principal id, a user's name in a session id. The kernel cannot tell an
//! opaque id from personal data, so the application chooses:
//!
//! | setting | what leaves the process |
//! |---|---|
//! | [`AsGiven`](CallerIdRecording::AsGiven) (default) | the id as passed |
//! | [`Pseudonymized`](CallerIdRecording::Pseudonymized) | `ps_` + 32 hex digits: HMAC-SHA256 of the id under the application's key, cut to 128 bits; the same id always gives the same pseudonym, so a backend still groups by principal or session |
//! | [`Omitted`](CallerIdRecording::Omitted) | nothing: the attribute is left out, the log line says `-`, and the budget gauge (a series per session) is not reported |
//!
//! Kernel-minted ids a caller hands back (handle and action ids) are another
//! matter: they are checked for the kernel's own shape and recorded as
//! [`INVALID_ID`](crate::INVALID_ID) when malformed, whatever this setting.

use std::borrow::Cow;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{KernelError, Result};

type HmacSha256 = Hmac<Sha256>;

/// The shortest pseudonym key accepted, in bytes.
pub const MIN_PSEUDONYM_KEY_LEN: usize = 16;

/// The prefix of every pseudonym, so that a reader of a trace can tell a
/// pseudonym from an id.
pub const PSEUDONYM_PREFIX: &str = "ps_";

/// How principal and session ids are recorded in telemetry and logs (see the
/// [module documentation](self)).
///
/// ```
/// use agent_kernel::{CallerIdRecording, PseudonymKey};
///
/// let recording = CallerIdRecording::Pseudonymized(PseudonymKey::new(b"an application key, not the signing secret")?);
/// let shown = recording.render("alice@example.com").unwrap_or_default();
/// assert!(shown.starts_with("ps_") && !shown.contains("alice"));
/// assert_eq!(CallerIdRecording::Omitted.render("alice@example.com"), None);
/// assert_eq!(CallerIdRecording::AsGiven.render("alice").as_deref(), Some("alice"));
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Clone, Default)]
pub enum CallerIdRecording {
    /// Recorded as the application passed them (the default).
    #[default]
    AsGiven,
    /// Recorded as a keyed pseudonym (see [`PseudonymKey`]).
    Pseudonymized(PseudonymKey),
    /// Not recorded at all.
    Omitted,
}

impl CallerIdRecording {
    /// What is recorded for `id`: the id, its pseudonym, or `None` (leave the
    /// attribute out).
    pub fn render<'a>(&self, id: &'a str) -> Option<Cow<'a, str>> {
        match self {
            Self::AsGiven => Some(Cow::Borrowed(id)),
            Self::Pseudonymized(key) => Some(Cow::Owned(key.pseudonym(id))),
            Self::Omitted => None,
        }
    }

    /// `render` for a log line: `-` when ids are omitted.
    pub fn for_log<'a>(&self, id: &'a str) -> Cow<'a, str> {
        self.render(id).unwrap_or(Cow::Borrowed("-"))
    }

    /// The setting's name, for `Debug` and configuration reports.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::AsGiven => "as_given",
            Self::Pseudonymized(_) => "pseudonymized",
            Self::Omitted => "omitted",
        }
    }
}

impl fmt::Debug for CallerIdRecording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The application's key for pseudonyms: an HMAC-SHA256 key of at least
/// [`MIN_PSEUDONYM_KEY_LEN`] bytes, held only as a keyed MAC state (never
/// shown by `Debug`). It must not be the token-signing secret:
/// [`KernelBuilder::build`](crate::KernelBuilder::build) refuses that, as a
/// pseudonym would otherwise be a MAC under the signing key.
#[derive(Clone)]
pub struct PseudonymKey {
    mac: HmacSha256,
}

impl PseudonymKey {
    /// A key from `bytes`.
    ///
    /// # Errors
    /// [`KernelError::InvalidConfig`] when the key is shorter than
    /// [`MIN_PSEUDONYM_KEY_LEN`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < MIN_PSEUDONYM_KEY_LEN {
            return Err(KernelError::InvalidConfig {
                message: format!(
                    "the pseudonym key must be at least {MIN_PSEUDONYM_KEY_LEN} bytes (got {})",
                    bytes.len()
                ),
            });
        }
        let mac = HmacSha256::new_from_slice(bytes).map_err(|e| KernelError::InvalidConfig {
            message: format!("the pseudonym key is not usable: {e}"),
        })?;
        Ok(Self { mac })
    }

    /// `ps_` + the first 16 bytes of HMAC-SHA256(key, `id`), in hex.
    pub fn pseudonym(&self, id: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(PSEUDONYM_PREFIX.len() + 32);
        out.push_str(PSEUDONYM_PREFIX);
        out.push_str(&hex::encode(&digest[..16]));
        out
    }

    /// Whether this key is the key of `other` (a keyed MAC state, such as
    /// the token provider's): the two MACs of a fixed probe message agree
    /// only if the keys do. Neither key is kept or compared in the clear.
    pub(crate) fn same_key_as(&self, other: &HmacSha256) -> bool {
        subtle::ConstantTimeEq::ct_eq(&probe(&self.mac)[..], &probe(other)[..]).into()
    }
}

/// The MAC of a fixed message under `mac`'s key.
pub(crate) fn probe(mac: &HmacSha256) -> [u8; 32] {
    let mut mac = mac.clone();
    mac.update(b"agent-kernel: is this the same key?");
    mac.finalize().into_bytes().into()
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_hide_the_id() {
        let a = PseudonymKey::new(b"0123456789abcdef-key-a").unwrap();
        let b = PseudonymKey::new(b"0123456789abcdef-key-b").unwrap();
        let p = a.pseudonym("alice@example.com");
        assert_eq!(p, a.pseudonym("alice@example.com"));
        assert_ne!(p, a.pseudonym("bob@example.com"));
        assert_ne!(p, b.pseudonym("alice@example.com"));
        assert_eq!(p.len(), 3 + 32);
        assert!(p.starts_with(PSEUDONYM_PREFIX));
        assert!(p[3..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!p.contains("alice"));
        assert_eq!(format!("{a:?}"), "PseudonymKey(..)");
    }

    #[test]
    fn short_keys_are_refused_and_only_the_same_key_matches() {
        let err = PseudonymKey::new(b"short").unwrap_err();
        assert_eq!(err.kind(), "invalid_config");
        let key = PseudonymKey::new(b"0123456789abcdef").unwrap();
        let same = HmacSha256::new_from_slice(b"0123456789abcdef").unwrap();
        let other = HmacSha256::new_from_slice(b"0123456789abcdeg").unwrap();
        assert!(key.same_key_as(&same));
        assert!(!key.same_key_as(&other));
    }

    #[test]
    fn each_setting_renders_as_documented() {
        let key = PseudonymKey::new(b"0123456789abcdef").unwrap();
        let id = "alice@example.com";
        assert_eq!(CallerIdRecording::default().render(id).as_deref(), Some(id));
        assert_eq!(
            CallerIdRecording::Pseudonymized(key.clone()).render(id),
            Some(Cow::Owned(key.pseudonym(id)))
        );
        assert_eq!(CallerIdRecording::Omitted.render(id), None);
        assert_eq!(CallerIdRecording::Omitted.for_log(id), "-");
        assert_eq!(
            format!("{:?}", CallerIdRecording::Pseudonymized(key)),
            "pseudonymized"
        );
    }
}
