//! Kernel-minted identifiers (UUID v4 text form) for tokens, actions, audits
//! and handles: minting them, and checking one that a caller hands back.

use crate::error::{KernelError, Result};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The length of an id's text form.
pub(crate) const ID_LEN: usize = 36;

/// A fresh random UUID v4 in its canonical hyphenated lower-case form.
pub(crate) fn new_id() -> String {
    id_string(&new_id_bytes())
}

/// A fresh random UUID v4 as the ASCII bytes of its text form (no allocation).
/// 122 random bits from the thread-local CSPRNG (`rand::rng()`), so ids stay unguessable.
pub(crate) fn new_id_bytes() -> [u8; ID_LEN] {
    let mut bytes: [u8; 16] = rand::random();
    // version 4, variant RFC 4122
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = [b'-'; ID_LEN];
    let mut at = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(b >> 4)];
        text[at + 1] = HEX[usize::from(b & 0x0f)];
        at += 2;
    }
    text
}

/// What telemetry records in place of a kernel id that a caller handed back
/// malformed: a forged id is caller-chosen text and never leaves as given.
pub const INVALID_ID: &str = "_INVALID";

/// Whether `id` has the exact shape of an id this kernel mints: a UUID v4 in
/// lower-case hyphenated form (36 ASCII characters). Anything else, handed
/// back as a handle or action id, was not minted here.
pub fn is_kernel_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == ID_LEN
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            14 => c == b'4',
            19 => matches!(c, b'8' | b'9' | b'a' | b'b'),
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// `id` as telemetry may record it: the id itself when it has the shape of a
/// kernel id ([`is_kernel_id`]), [`INVALID_ID`] otherwise.
pub(crate) fn for_telemetry(id: &str) -> &str {
    if is_kernel_id(id) { id } else { INVALID_ID }
}

/// `Ok` when `id`, handed back by a caller as a `what` id (`handle`,
/// `action`), has the shape of a kernel id; otherwise
/// [`KernelError::MalformedId`] naming it redacted and cut to 64 characters.
pub(crate) fn check(what: &'static str, id: &str) -> Result<()> {
    if is_kernel_id(id) {
        return Ok(());
    }
    Err(KernelError::MalformedId {
        what,
        id: crate::otel::scrub(id).chars().take(64).collect(),
    })
}

/// The text of an id made by [`new_id_bytes`].
pub(crate) fn id_string(id: &[u8; ID_LEN]) -> String {
    // Always ASCII.
    std::str::from_utf8(id)
        .map(str::to_owned)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape_and_uniqueness() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(
            parts[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
        assert!(
            a.bytes()
                .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        let raw = new_id_bytes();
        assert_eq!(id_string(&raw).len(), ID_LEN);
        assert_eq!(id_string(&raw).as_bytes(), &raw);
    }

    #[test]
    fn minted_ids_are_kernel_ids_and_nothing_else_is() {
        for _ in 0..1000 {
            let id = new_id();
            assert!(is_kernel_id(&id), "{id}");
            assert_eq!(for_telemetry(&id), id);
        }
        let good = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert!(is_kernel_id(good));
        for bad in [
            "",
            "h-bob@example.com",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5b-d9cb-369f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-c165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5b-d9cb-469f-a165-70867728950ee",
            "0f8fad5bxd9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "0f8fad5b-d9cb-469f-a165-7086772895\u{e9}",
        ] {
            assert!(!is_kernel_id(bad), "{bad}");
            assert_eq!(for_telemetry(bad), INVALID_ID);
            assert_eq!(
                check("handle", bad).map_err(|e| e.kind()),
                Err("malformed_id")
            );
        }
        assert!(check("handle", good).is_ok());
    }

    #[test]
    fn a_malformed_id_is_named_redacted_and_bounded() {
        let err = check("handle", "h-bob@example.com").map_err(|e| e.to_string());
        let text = err.err().unwrap_or_default();
        assert!(text.starts_with("malformed handle id '"), "{text}");
        assert!(!text.contains("bob@example.com"), "{text}");
        let long = "x".repeat(10_000);
        let Err(KernelError::MalformedId { id, .. }) = check("action", &long) else {
            panic!("a 10 000-character id is malformed");
        };
        assert_eq!(id.chars().count(), 64);
    }
}
