//! Random identifiers (UUID v4 text form) for tokens, actions, audits and handles.

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
}
