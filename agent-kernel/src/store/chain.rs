//! The keyed hash chain over audit records: each record's link is
//! HMAC-SHA256(key, previous link ‖ sequence number ‖ record bytes), so a
//! record changed, removed or inserted in the middle breaks every later link,
//! and nobody without the key can mend it.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{KernelError, Result};

type HmacSha256 = Hmac<Sha256>;

/// Shortest [`AuditKey`] accepted, in bytes.
pub const MIN_AUDIT_KEY_LEN: usize = 16;

/// The link before the first record of a chain.
pub const GENESIS_LINK: [u8; 32] = [0; 32];

/// The application's key for the audit chain. It must not be the
/// token-signing secret (the builder refuses it): whoever can verify the
/// chain need not be able to mint tokens.
#[derive(Clone)]
pub struct AuditKey {
    mac: HmacSha256,
}

impl AuditKey {
    /// A key from `bytes` (at least [`MIN_AUDIT_KEY_LEN`] bytes, else
    /// [`KernelError::InvalidConfig`]).
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self> {
        let bytes = bytes.as_ref();
        if bytes.len() < MIN_AUDIT_KEY_LEN {
            return Err(KernelError::invalid_config(format!(
                "the audit chain key must be at least {MIN_AUDIT_KEY_LEN} bytes (got {})",
                bytes.len()
            )));
        }
        let mac = HmacSha256::new_from_slice(bytes)
            .map_err(|e| KernelError::invalid_config(format!("unusable audit chain key: {e}")))?;
        Ok(Self { mac })
    }

    /// The link of record `seq` whose stored bytes are `record`, after the
    /// link `prev` ([`GENESIS_LINK`] for the first record): what an external
    /// verifier recomputes.
    pub fn link(&self, prev: &[u8; 32], seq: i64, record: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(prev);
        mac.update(&seq.to_be_bytes());
        mac.update(record);
        mac.finalize().into_bytes().into()
    }

    /// A MAC over a labelled value kept beside the chain (the anchor left by
    /// retention, the key check).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn tag(&self, label: &[u8], value: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(label);
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    pub(crate) fn same_key_as(&self, other: &HmacSha256) -> bool {
        subtle::ConstantTimeEq::ct_eq(
            &crate::caller_ids::probe(&self.mac)[..],
            &crate::caller_ids::probe(other)[..],
        )
        .into()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

/// What a chain verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records whose link was checked (up to and including the first broken one).
    pub checked: u64,
    /// The first broken link, if any.
    pub first_broken: Option<BrokenLink>,
}

impl VerifyReport {
    /// Whether every link holds.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// The first record whose link does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// Its sequence number in the log.
    pub seq: i64,
    /// Its action id, as stored.
    pub action_id: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {} (action {}): {}",
            self.seq, self.action_id, self.reason
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_depend_on_every_input_and_the_key() {
        let key = AuditKey::new(b"0123456789abcdef").unwrap();
        let other = AuditKey::new(b"fedcba9876543210").unwrap();
        let a = key.link(&GENESIS_LINK, 1, b"{}");
        assert_ne!(a, key.link(&GENESIS_LINK, 2, b"{}"));
        assert_ne!(a, key.link(&a, 1, b"{}"));
        assert_ne!(a, key.link(&GENESIS_LINK, 1, b"{ }"));
        assert_ne!(a, other.link(&GENESIS_LINK, 1, b"{}"));
        assert_eq!(
            AuditKey::new(b"short").unwrap_err().kind(),
            "invalid_config"
        );
        assert_eq!(format!("{key:?}"), "AuditKey(..)");
    }
}
