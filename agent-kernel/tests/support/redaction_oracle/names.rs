//! Sensitive field names, matched on normalised name tokens rather than an
//! exact list.
//!
//! A name is split into tokens at every character that is not an ASCII
//! letter or digit (`_`, `-`, `.`, spaces, non-ASCII characters), at
//! camelCase boundaries (`apiKey` → `api key`, `APIKey` → `api key`) and
//! between letters and digits (`cvv2` → `cvv 2`); tokens are compared
//! ASCII-case-insensitively and tokens made only of digits are dropped. The
//! last remaining token is the *head* (the noun the name is about), the
//! others are its *qualifiers*. A name is sensitive when:
//!
//! 1. any token is one of [`ANYWHERE`] (`password`, `passwd`, `passphrase`,
//!    `ssn`, `cvv`, `cvc`): `password_hash`, `ssn_last4`, `card_cvv2`;
//! 2. or its head is one of [`CREDENTIAL_HEADS`] or [`PERSONAL_HEADS`]
//!    (`token`, `secret`, `pwd`, `pin`, `credentials`, `authorization`,
//!    `cookie`, `email`, `phone`, …) or ends with one of
//!    [`CREDENTIAL_SUFFIXES`] (`dbpassword`, `authtoken`): `access_token`,
//!    `client_secret`, `user_email`; except a `token` qualified as a
//!    pagination cursor ([`PAGINATION`]: `next_token`, `page_token`), which
//!    is not a credential;
//! 3. or its head and one of its qualifiers form a compound of
//!    [`COMPOUNDS`]: `key` after `api`, `private`, `secret`, `access`, …
//!    (`api_key`, `private_key`, `AWS_SECRET_ACCESS_KEY`); `number`/`no`/`num`
//!    after `phone`, `card`, `security`, … (`phone_number`,
//!    `social_security_number`); `address` after `email` or `mail`; `code`
//!    after `pin` or `security`; `card` alone or after `credit`, `debit`,
//!    `payment` or `bank`.
//!
//! Not sensitive, for example: `token_count`, `max_tokens`, `token_type`,
//! `public_key`, `key`, `sort_key`, `email_verified`, `phone_verified`,
//! `emails`, `card_type`, `next_page_token`.
//!
//! Credential names (every rule but the personal heads and compounds:
//! no `email`, `phone`, `card`, `…_number`, `email_address`) also mark
//! `name=value` and `"name": "value"` assignments inside strings.

/// Tokens that make a name sensitive wherever they stand in it.
pub const ANYWHERE: [&str; 7] = [
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "ssn",
    "cvv",
    "cvc",
];

/// Heads (last tokens) that name a credential.
pub const CREDENTIAL_HEADS: [&str; 18] = [
    "pw",
    "pwd",
    "secret",
    "secrets",
    "token",
    "credential",
    "credentials",
    "authorization",
    "cookie",
    "pin",
    "apikey",
    "apitoken",
    "accesstoken",
    "authtoken",
    "refreshtoken",
    "secretkey",
    "privatekey",
    "clientsecret",
];

/// Endings that make a head a credential when the name glues words
/// together without a case change (`dbpassword`, `adminpwd`, `authtoken`).
pub const CREDENTIAL_SUFFIXES: [&str; 7] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
];

/// Heads (last tokens) that name personal data.
pub const PERSONAL_HEADS: [&str; 3] = ["email", "phone", "telephone"];

/// Qualifiers that make a `token` head a pagination cursor, not a credential.
pub const PAGINATION: [&str; 6] = [
    "page",
    "next",
    "continuation",
    "pagination",
    "cursor",
    "sync",
];

/// Whether a compound is a credential or personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameClass {
    /// A secret that authenticates someone (also marks text assignments).
    Credential,
    /// Personal data (e-mail address, phone or card number).
    Personal,
}

/// Compounds: a head, the qualifiers that make it sensitive (any one of
/// them, anywhere before the head), and what it then names. A `card` head
/// is also sensitive on its own.
pub const COMPOUNDS: [(&str, &[&str], bool); 6] = [
    (
        "key",
        &[
            "api",
            "private",
            "secret",
            "access",
            "encryption",
            "signing",
            "master",
            "client",
            "auth",
            "session",
            "hmac",
            "ssh",
        ],
        true,
    ),
    ("code", &["pin", "security"], true),
    (
        "number",
        &[
            "phone",
            "telephone",
            "mobile",
            "cell",
            "card",
            "cc",
            "security",
        ],
        false,
    ),
    (
        "no",
        &["phone", "telephone", "mobile", "cell", "card"],
        false,
    ),
    (
        "num",
        &["phone", "telephone", "mobile", "cell", "card"],
        false,
    ),
    ("address", &["email", "mail"], false),
];

/// Qualifiers that make a `card` head sensitive (it is on its own too).
const CARD_QUALIFIERS: [&str; 4] = ["credit", "debit", "payment", "bank"];

/// Whether values under the field name `name` are always replaced by
/// [`REDACTED`](super::REDACTED): the rule in this module's documentation
/// (tokens, head, qualifiers), which covers the reference's nine names
/// (`email`, `phone`, `card_number`, `ssn`, `social_security_number`, `cvv`,
/// `credit_card`, `password`, `secret`) and their variants in any case and
/// spelling (`Password`, `passwd`, `api_key`, `apiKey`, `X-Api-Key`,
/// `access_token`, `client_secret`, `private_key`, `pin`, `cvv2`,
/// `phone_number`, `email_address`).
pub fn is_sensitive_field_name(name: &str) -> bool {
    classify(name).is_some()
}

/// Whether `name` names a credential (the rule's credential part): such a
/// name also marks an assignment inside a string (`password=…`).
pub(crate) fn is_credential_name(name: &str) -> bool {
    classify(name) == Some(NameClass::Credential)
}

/// What `name` names, if anything sensitive.
pub(crate) fn classify(name: &str) -> Option<NameClass> {
    let mut scan = Scan::default();
    split(name, &mut |token| scan.push(token));
    scan.finish()
}

fn is(word: &str, list: &[&str]) -> bool {
    list.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// What the tokens seen so far say: the head (the last token) and which
/// kinds of qualifier stand before it.
#[derive(Default)]
struct Scan<'a> {
    head: Option<&'a str>,
    anywhere: bool,
    qualifiers: usize,
    /// Bit `i`: a qualifier of `COMPOUNDS[i]` was seen.
    compound: u32,
    card: bool,
    pagination: bool,
    /// The qualifier right before the head is `e` (`e_mail`).
    e: bool,
}

impl<'a> Scan<'a> {
    fn push(&mut self, token: &'a str) {
        // Tokens of digits only say nothing about what the name holds (`cvv2`).
        if token.is_empty() || token.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        self.anywhere |= is(token, &ANYWHERE);
        if let Some(q) = self.head.replace(token) {
            self.qualifiers += 1;
            for (i, (_, qualifiers, _)) in COMPOUNDS.iter().enumerate() {
                if is(q, qualifiers) {
                    self.compound |= 1 << i;
                }
            }
            self.card |= is(q, &CARD_QUALIFIERS);
            self.pagination |= is(q, &PAGINATION);
            self.e = q.eq_ignore_ascii_case("e");
        }
    }

    fn finish(self) -> Option<NameClass> {
        let head = self.head?;
        if self.anywhere {
            return Some(NameClass::Credential);
        }
        let glued = CREDENTIAL_SUFFIXES.iter().any(|suffix| {
            head.len()
                .checked_sub(suffix.len())
                .and_then(|cut| head.get(cut..))
                .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
        });
        if is(head, &CREDENTIAL_HEADS) || glued {
            let pagination = head.eq_ignore_ascii_case("token") && self.pagination;
            return (!pagination).then_some(NameClass::Credential);
        }
        if is(head, &PERSONAL_HEADS) {
            return Some(NameClass::Personal);
        }
        if head.eq_ignore_ascii_case("card") {
            return (self.qualifiers == 0 || self.card).then_some(NameClass::Personal);
        }
        if head.eq_ignore_ascii_case("mail") && self.e {
            return Some(NameClass::Personal);
        }
        COMPOUNDS
            .iter()
            .enumerate()
            .find(|(i, (compound_head, _, _))| {
                self.compound & (1 << i) != 0 && head.eq_ignore_ascii_case(compound_head)
            })
            .map(|(_, (_, _, credential))| {
                if *credential {
                    NameClass::Credential
                } else {
                    NameClass::Personal
                }
            })
    }
}

/// Splits `name` into tokens (see the module documentation), calling `out`
/// with each.
fn split<'a>(name: &'a str, out: &mut impl FnMut(&'a str)) {
    let bytes = name.as_bytes();
    let mut start = None::<usize>;
    for (i, &b) in bytes.iter().enumerate() {
        if !b.is_ascii_alphanumeric() {
            if let Some(s) = start.take() {
                out(name.get(s..i).unwrap_or_default());
            }
            continue;
        }
        let Some(s) = start else {
            start = Some(i);
            continue;
        };
        let prev = bytes.get(i.wrapping_sub(1)).copied().unwrap_or(b' ');
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        let boundary = (prev.is_ascii_lowercase() && b.is_ascii_uppercase())
            || (prev.is_ascii_uppercase() && b.is_ascii_uppercase() && next.is_ascii_lowercase())
            || (prev.is_ascii_digit() != b.is_ascii_digit());
        if boundary {
            out(name.get(s..i).unwrap_or_default());
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out(name.get(s..).unwrap_or_default());
    }
}

/// Lower-case ASCII words whose presence (in any case) a text needs before
/// an assignment in it can have a credential name: every credential name
/// holds one of them (the pre-scan's key words).
pub(crate) const CREDENTIAL_TRIGGERS: [&[u8]; 13] = [
    b"pass",
    b"pw",
    b"secret",
    b"token",
    b"credential",
    b"auth",
    b"cookie",
    b"pin",
    b"key",
    b"code",
    b"ssn",
    b"cvv",
    b"cvc",
];
