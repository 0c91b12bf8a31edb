//! The policy engine: who may use which capability, under which constraints.
//!
//! [`DefaultPolicyEngine`] applies the rules in this order:
//! 1. WRITE needs role `writer` or `admin`; DESTRUCTIVE needs `admin`; both need a
//!    justification of at least 15 visible characters ([`visible_len`]).
//! 2. PII/PCI needs the principal's `tenant` attribute, with at least one
//!    visible character (an empty or blank tenant is no tenant); without role
//!    `pii_reader` the capability's `allowed_fields` become a constraint.
//! 3. SECRETS needs `admin` or `secrets_reader` and a 15-character justification.
//! 4. Requested constraints: only `max_rows` and `allowed_fields` are known;
//!    any other key is refused (`invalid_constraint`, naming the key), never
//!    signed. A requested `allowed_fields` narrows the enforced list, never
//!    widens it; a request that leaves no field to show (`[]`, or only fields
//!    the capability does not allow) is refused.
//! 5. `max_rows` is 50 (500 for role `service`); a requested value is clamped to
//!    `[0, cap]`, a non-integer one is denied.
//! 6. A sliding-window rate limit per (principal, capability): READ 60, WRITE 10,
//!    DESTRUCTIVE 2 per 60 s by default, ×10 for role `service`.
//!
//! At invoke time ([`PolicyEngine::evaluate_invoke`]) the same role, sensitivity
//! and row-cap rules are checked again against the token's signed constraints
//! (a token carrying an unknown constraint key or an empty `allowed_fields`,
//! which this policy never grants, is refused), and invocations are rate
//! limited on their own, so a token cannot be replayed without limit for its
//! lifetime.
//!
//! Error messages never quote a requested constraint's value; a constraint
//! key, which is caller text, is named through the kernel's redactor and cut
//! to 64 characters.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::{DenialCategory, KernelError, Result};
use crate::rate::{DEFAULT_MAX_KEYS, RateLimiter, Refusal};
use crate::time::{Clock, SystemClock};
use crate::types::{
    Capability, CapabilityRequest, Constraints, PolicyDecision, Principal, SafetyClass,
    SensitivityTag, json_kind,
};

/// Minimum justification length, in visible characters ([`visible_len`]), where one is required.
pub const MIN_JUSTIFICATION: usize = 15;
/// Row cap for ordinary principals.
pub const MAX_ROWS_USER: u64 = 50;
/// Row cap for principals with role `service`.
pub const MAX_ROWS_SERVICE: u64 = 500;
/// Rate-limit multiplier for role `service`.
pub const SERVICE_RATE_MULTIPLIER: u64 = 10;

/// How many unknown constraint keys a refusal names (the rest are counted).
const MAX_NAMED_KEYS: usize = 8;
/// How many characters of a caller's constraint key a message shows.
const MAX_KEY_CHARS: usize = 64;

/// Whether `c` shows nothing on its own: whitespace (`char::is_whitespace`:
/// Unicode `White_Space`, which holds Zs, Zl, Zp and the blank controls),
/// controls (Cc), format characters (Cf: soft hyphen, the zero-width
/// space, non-joiner and joiner U+200B–U+200D, bidirectional marks and
/// overrides, word joiner U+2060 and the invisible operators, the byte-order
/// mark U+FEFF, interlinear annotation marks, tag characters, …), variation
/// selectors, the common combining-mark blocks (U+0300–U+036F, U+1AB0–U+1AFF,
/// U+1DC0–U+1DFF, U+20D0–U+20FF, U+FE20–U+FE2F: they decorate the character
/// before them) and the letters that render blank (Hangul fillers U+115F,
/// U+1160, U+3164, U+FFA0; braille blank U+2800). An explicit table, so no
/// Unicode-data dependency; combining marks outside those blocks count.
fn is_invisible(c: char) -> bool {
    if c.is_whitespace() || c.is_control() {
        return true;
    }
    matches!(
        u32::from(c),
        // Cf (Unicode 15.1)
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            // Mongolian free variation selectors, variation selectors
            | 0x180B..=0x180D
            | 0x180F
            | 0xFE00..=0xFE0F
            | 0xE0100..=0xE01EF
            // combining marks
            | 0x0300..=0x036F
            | 0x1AB0..=0x1AFF
            | 0x1DC0..=0x1DFF
            | 0x20D0..=0x20FF
            | 0xFE20..=0xFE2F
            // blank letters and symbols
            | 0x115F
            | 0x1160
            | 0x3164
            | 0xFFA0
            | 0x2800
    )
}

/// How many visible characters `text` holds: its characters minus those that
/// show nothing on their own (whitespace, controls, format characters such
/// as the zero-width ones, variation selectors, common combining marks, blank
/// letters; the full set is listed in the source of `is_invisible`). This is what
/// the justification length ([`MIN_JUSTIFICATION`]) and the tenant attribute
/// are measured in.
///
/// ```
/// use agent_kernel::policy::visible_len;
/// assert_eq!(visible_len("  fix typo  "), 7);
/// assert_eq!(visible_len(&"\u{200B}".repeat(15)), 0);
/// assert_eq!(visible_len("e\u{0301}"), 1);
/// ```
pub fn visible_len(text: &str) -> usize {
    text.chars().filter(|c| !is_invisible(*c)).count()
}

/// A caller's constraint key as an error message may show it: redacted,
/// cut to [`MAX_KEY_CHARS`] characters, quoted.
fn quote_key(key: &str) -> String {
    let shown: String = crate::otel::scrub(key)
        .chars()
        .take(MAX_KEY_CHARS)
        .collect();
    format!("'{shown}'")
}

/// `keys` named for an error message (`key 'a'`, `keys 'a', 'b'`): at most
/// [`MAX_NAMED_KEYS`], the rest counted.
fn name_keys<'k>(keys: impl ExactSizeIterator<Item = &'k str>) -> String {
    let total = keys.len();
    let mut named: Vec<String> = keys.take(MAX_NAMED_KEYS).map(quote_key).collect();
    if total > MAX_NAMED_KEYS {
        named.push(format!("and {} more", total - MAX_NAMED_KEYS));
    }
    let noun = if total == 1 { "key" } else { "keys" };
    format!("{noun} {}", named.join(", "))
}

/// What the invoke-time evaluation settles for the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvokeDecision {
    /// The row cap in force (the token's, bounded by the principal's current cap).
    pub max_rows: u64,
}

/// Decides grants and re-checks invocations.
pub trait PolicyEngine: Send + Sync + fmt::Debug {
    /// Evaluates a grant request; an `Ok` decision's constraints are signed into the token.
    fn evaluate(
        &self,
        request: &CapabilityRequest,
        capability: &Capability,
        principal: &Principal,
        justification: &str,
    ) -> Result<PolicyDecision>;

    /// Re-evaluates at invoke time against the token's signed constraints.
    fn evaluate_invoke(
        &self,
        capability: &Capability,
        principal: &Principal,
        constraints: &Constraints,
    ) -> Result<InvokeDecision>;
}

/// A rate limit: at most `count` events per sliding `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per window (≥ 1).
    pub count: u64,
    /// Window length (> 0).
    pub window: Duration,
}

impl RateLimit {
    /// A limit of `count` per `window`.
    pub const fn new(count: u64, window: Duration) -> Self {
        Self { count, window }
    }
}

/// Rate limits per safety class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// READ limit (default 60 / 60 s).
    pub read: RateLimit,
    /// WRITE limit (default 10 / 60 s).
    pub write: RateLimit,
    /// DESTRUCTIVE limit (default 2 / 60 s).
    pub destructive: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        let minute = Duration::from_secs(60);
        Self {
            read: RateLimit::new(60, minute),
            write: RateLimit::new(10, minute),
            destructive: RateLimit::new(2, minute),
        }
    }
}

impl RateLimits {
    /// The limit for `class`.
    pub const fn get(&self, class: SafetyClass) -> RateLimit {
        match class {
            SafetyClass::Read => self.read,
            SafetyClass::Write => self.write,
            SafetyClass::Destructive => self.destructive,
        }
    }

    /// Replaces the limit for `class`.
    pub fn set(&mut self, class: SafetyClass, limit: RateLimit) {
        match class {
            SafetyClass::Read => self.read = limit,
            SafetyClass::Write => self.write = limit,
            SafetyClass::Destructive => self.destructive = limit,
        }
    }

    /// Refuses a count below 1 or a zero window, naming the class and values.
    pub fn validate(&self) -> Result<()> {
        for class in [
            SafetyClass::Read,
            SafetyClass::Write,
            SafetyClass::Destructive,
        ] {
            let l = self.get(class);
            if l.count < 1 || l.window.is_zero() {
                return Err(KernelError::invalid_config(format!(
                    "invalid rate limit for {class}: limit must be >= 1 and window must be > 0, got limit={}, window={:?}",
                    l.count, l.window
                )));
            }
        }
        Ok(())
    }
}

/// Builder for [`DefaultPolicyEngine`].
#[derive(Debug)]
pub struct DefaultPolicyEngineBuilder {
    limits: RateLimits,
    clock: Arc<dyn Clock>,
    max_rate_keys: usize,
}

impl DefaultPolicyEngineBuilder {
    /// Overrides the limit of one safety class (validated by [`build`](Self::build)).
    #[must_use]
    pub fn rate_limit(mut self, class: SafetyClass, count: u64, window: Duration) -> Self {
        self.limits.set(class, RateLimit::new(count, window));
        self
    }

    /// Replaces all limits.
    #[must_use]
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The clock the rate limiter reads (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many (scope, principal, capability) keys the limiter tracks at most
    /// (default 16 384). When every tracked key is live, new keys are refused.
    #[must_use]
    pub fn max_rate_keys(mut self, n: usize) -> Self {
        self.max_rate_keys = n;
        self
    }

    /// Builds the engine; invalid limits are refused with [`KernelError::InvalidConfig`].
    pub fn build(self) -> Result<DefaultPolicyEngine> {
        self.limits.validate()?;
        if self.max_rate_keys == 0 {
            return Err(KernelError::invalid_config(
                "max_rate_keys must be >= 1, got 0",
            ));
        }
        Ok(DefaultPolicyEngine {
            limits: self.limits,
            limiter: RateLimiter::new(self.max_rate_keys),
            clock: self.clock,
        })
    }
}

/// The default rule-based policy (see the [module docs](self)).
///
/// ```
/// use agent_kernel::{Capability, CapabilityRequest, DefaultPolicyEngine, PolicyEngine, Principal, SafetyClass};
/// let engine = DefaultPolicyEngine::new();
/// let cap = Capability::new("billing.update", "Update", "Update an invoice", SafetyClass::Write);
/// let req = CapabilityRequest::new("billing.update", "fix a typo");
/// let reader = Principal::new("u1").with_roles(["reader"]);
/// let err = engine.evaluate(&req, &cap, &reader, "fixing the customer's address").unwrap_err();
/// assert_eq!(err.denial_category().map(|c| c.as_str()), Some("missing_role"));
/// ```
#[derive(Debug)]
pub struct DefaultPolicyEngine {
    limits: RateLimits,
    limiter: RateLimiter,
    clock: Arc<dyn Clock>,
}

impl Default for DefaultPolicyEngine {
    fn default() -> Self {
        Self::new()
    }
}

const SCOPE_GRANT: &str = "grant";
const SCOPE_INVOKE: &str = "invoke";

impl DefaultPolicyEngine {
    /// The engine with default limits and the system clock.
    pub fn new() -> Self {
        Self {
            limits: RateLimits::default(),
            limiter: RateLimiter::new(DEFAULT_MAX_KEYS),
            clock: Arc::new(SystemClock),
        }
    }

    /// A builder starting from the defaults.
    pub fn builder() -> DefaultPolicyEngineBuilder {
        DefaultPolicyEngineBuilder {
            limits: RateLimits::default(),
            clock: Arc::new(SystemClock),
            max_rate_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// The limits in force.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.limits
    }

    /// How many (scope, principal, capability) keys the rate limiter tracks now.
    pub fn tracked_rate_keys(&self) -> usize {
        self.limiter.tracked_keys()
    }

    fn deny(
        capability: &Capability,
        principal: &Principal,
        category: DenialCategory,
        reason: String,
    ) -> KernelError {
        // No principal id: the engine does not know how the application wants
        // its ids recorded (`KernelBuilder::caller_ids`); the audit record
        // says who.
        log::warn!(
            "policy_denied capability_id={} category={}",
            capability.capability_id,
            category
        );
        KernelError::PolicyDenied {
            capability_id: capability.capability_id.clone(),
            principal_id: principal.principal_id.clone(),
            reason,
            category,
        }
    }

    fn roles_text(principal: &Principal) -> String {
        let mut roles: Vec<&str> = principal.roles.iter().map(String::as_str).collect();
        roles.sort_unstable();
        roles.dedup();
        format!("[{}]", roles.join(", "))
    }

    /// Rule 1's role half: the roles the safety class needs.
    fn check_safety_roles(capability: &Capability, principal: &Principal) -> Result<()> {
        let needed = match capability.safety_class {
            SafetyClass::Read => return Ok(()),
            SafetyClass::Write if principal.has_role("writer") || principal.has_role("admin") => {
                return Ok(());
            }
            SafetyClass::Destructive if principal.has_role("admin") => return Ok(()),
            SafetyClass::Write => "the 'writer' or 'admin' role",
            SafetyClass::Destructive => "the 'admin' role",
        };
        Err(Self::deny(
            capability,
            principal,
            DenialCategory::MissingRole,
            format!(
                "{} capabilities require {needed}; principal '{}' has roles {}",
                capability.safety_class,
                principal.principal_id,
                Self::roles_text(principal)
            ),
        ))
    }

    /// Rules 2 and 3's attribute and role halves.
    fn check_sensitivity(capability: &Capability, principal: &Principal) -> Result<()> {
        match capability.sensitivity {
            SensitivityTag::Pii | SensitivityTag::Pci
                if principal
                    .attributes
                    .get("tenant")
                    .is_none_or(|t| visible_len(t) == 0) =>
            {
                Err(Self::deny(
                    capability,
                    principal,
                    DenialCategory::MissingTenantAttribute,
                    format!(
                        "capability '{}' has {} sensitivity and requires the principal to have a non-empty 'tenant' attribute",
                        capability.capability_id, capability.sensitivity
                    ),
                ))
            }
            SensitivityTag::Secrets
                if !(principal.has_role("admin") || principal.has_role("secrets_reader")) =>
            {
                Err(Self::deny(
                    capability,
                    principal,
                    DenialCategory::MissingRole,
                    format!(
                        "SECRETS capabilities require the 'admin' or 'secrets_reader' role; principal '{}' has roles {}",
                        principal.principal_id,
                        Self::roles_text(principal)
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn check_justification(
        what: &str,
        capability: &Capability,
        principal: &Principal,
        justification: &str,
    ) -> Result<()> {
        let visible = visible_len(justification);
        if visible < MIN_JUSTIFICATION {
            return Err(Self::deny(
                capability,
                principal,
                DenialCategory::InsufficientJustification,
                format!(
                    "{what} capabilities require a justification of at least {MIN_JUSTIFICATION} visible characters; got {} characters ({visible} visible: whitespace, control, format and zero-width characters do not count)",
                    justification.chars().count()
                ),
            ));
        }
        Ok(())
    }

    /// Whether the policy forces the capability's `allowed_fields` on this principal.
    fn enforced_fields<'c>(
        capability: &'c Capability,
        principal: &Principal,
    ) -> Option<&'c Arc<[String]>> {
        let sensitive = matches!(
            capability.sensitivity,
            SensitivityTag::Pii | SensitivityTag::Pci
        );
        (sensitive && !capability.allowed_fields.is_empty() && !principal.has_role("pii_reader"))
            .then_some(&capability.allowed_fields)
    }

    /// A requested `allowed_fields` list, settled: blank names and repeats
    /// dropped; where the policy enforces the capability's list, only the
    /// requested fields that list holds (a request narrows, never widens).
    /// A list that leaves no field to show is refused: an empty list means
    /// "show nothing", which is never what a grant is for, and must not be
    /// mistaken anywhere for "no filter".
    fn narrow_fields(
        capability: &Capability,
        principal: &Principal,
        requested: &[String],
    ) -> Result<Arc<[String]>> {
        let enforced = Self::enforced_fields(capability, principal);
        let mut kept: Vec<String> = Vec::with_capacity(requested.len());
        for f in requested {
            let allowed = enforced.is_none_or(|e| e.contains(f));
            if allowed && visible_len(f) > 0 && !kept.contains(f) {
                kept.push(f.clone());
            }
        }
        if !kept.is_empty() {
            return Ok(kept.into());
        }
        let why = match enforced {
            _ if requested.is_empty() => "is empty".to_owned(),
            Some(e) => format!(
                "names none of the fields this capability allows [{}]",
                e.join(", ")
            ),
            None => "names no field".to_owned(),
        };
        Err(Self::deny(
            capability,
            principal,
            DenialCategory::InvalidConstraint,
            format!(
                "the requested '{}' {why}, so it would show no field; name at least one allowed field, or omit the constraint",
                Constraints::ALLOWED_FIELDS
            ),
        ))
    }

    fn row_cap(principal: &Principal) -> u64 {
        if principal.has_role("service") {
            MAX_ROWS_SERVICE
        } else {
            MAX_ROWS_USER
        }
    }

    fn rate_check(
        &self,
        scope: &str,
        capability: &Capability,
        principal: &Principal,
    ) -> Result<()> {
        let base = self.limits.get(capability.safety_class);
        let limit = if principal.has_role("service") {
            base.count.saturating_mul(SERVICE_RATE_MULTIPLIER)
        } else {
            base.count
        };
        let now = self.clock.monotonic();
        match self.limiter.admit(
            scope,
            &principal.principal_id,
            &capability.capability_id,
            limit,
            base.window,
            now,
        ) {
            Ok(()) => Ok(()),
            Err(Refusal::OverLimit) => Err(Self::deny(
                capability,
                principal,
                DenialCategory::RateLimited,
                format!(
                    "rate limit exceeded: {limit} {} {scope}s per {:?} for principal '{}'",
                    capability.safety_class, base.window, principal.principal_id
                ),
            )),
            Err(Refusal::AtCapacity) => Err(Self::deny(
                capability,
                principal,
                DenialCategory::RateLimited,
                "rate limiter is tracking its maximum number of active keys; try again later"
                    .to_owned(),
            )),
        }
    }
}

impl PolicyEngine for DefaultPolicyEngine {
    fn evaluate(
        &self,
        request: &CapabilityRequest,
        capability: &Capability,
        principal: &Principal,
        justification: &str,
    ) -> Result<PolicyDecision> {
        // Rule 1: safety class (role, then justification).
        Self::check_safety_roles(capability, principal)?;
        if capability.safety_class != SafetyClass::Read {
            Self::check_justification(
                capability.safety_class.as_str(),
                capability,
                principal,
                justification,
            )?;
        }
        // Rules 2 and 3: sensitivity.
        Self::check_sensitivity(capability, principal)?;
        if capability.sensitivity == SensitivityTag::Secrets {
            Self::check_justification("SECRETS", capability, principal, justification)?;
        }

        // Requested constraints: known keys only, validated, then narrowed by the policy.
        let unknown: Vec<&str> = request
            .constraints
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, Constraints::MAX_ROWS | Constraints::ALLOWED_FIELDS))
            .collect();
        if !unknown.is_empty() {
            return Err(Self::deny(
                capability,
                principal,
                DenialCategory::InvalidConstraint,
                format!(
                    "unknown constraint {} (this policy grants only '{}' and '{}')",
                    name_keys(unknown.into_iter()),
                    Constraints::MAX_ROWS,
                    Constraints::ALLOWED_FIELDS
                ),
            ));
        }
        let mut constraints = Constraints::default();
        if let Some(v) = request.constraints.get(Constraints::ALLOWED_FIELDS) {
            let requested = Constraints::from_map(
                std::iter::once((Constraints::ALLOWED_FIELDS.to_owned(), v.clone())).collect(),
            )
            .map_err(|e| {
                Self::deny(
                    capability,
                    principal,
                    DenialCategory::InvalidConstraint,
                    format!("invalid constraint: {e}"),
                )
            })?
            .allowed_fields
            .unwrap_or_default();
            constraints.allowed_fields =
                Some(Self::narrow_fields(capability, principal, &requested)?);
        } else if let Some(enforced) = Self::enforced_fields(capability, principal) {
            constraints.allowed_fields = Some(Arc::clone(enforced));
        }

        let cap = Self::row_cap(principal);
        constraints.max_rows = Some(match request.constraints.get(Constraints::MAX_ROWS) {
            None => cap,
            Some(v) => clamp_requested_rows(v, cap).ok_or_else(|| {
                Self::deny(
                    capability,
                    principal,
                    DenialCategory::InvalidConstraint,
                    format!(
                        "invalid '{}' constraint: expected an integer, got {}",
                        Constraints::MAX_ROWS,
                        json_kind(v)
                    ),
                )
            })?,
        });

        self.rate_check(SCOPE_GRANT, capability, principal)?;
        log::debug!("policy_allowed capability_id={}", capability.capability_id);
        Ok(PolicyDecision {
            allowed: true,
            reason: "request approved by DefaultPolicyEngine".to_owned(),
            constraints,
        })
    }

    fn evaluate_invoke(
        &self,
        capability: &Capability,
        principal: &Principal,
        constraints: &Constraints,
    ) -> Result<InvokeDecision> {
        Self::check_safety_roles(capability, principal)?;
        Self::check_sensitivity(capability, principal)?;
        if !constraints.extra.is_empty() {
            return Err(Self::deny(
                capability,
                principal,
                DenialCategory::InvalidConstraint,
                format!(
                    "token carries constraint {}, which this policy never grants; request a new grant",
                    name_keys(constraints.extra.keys().map(String::as_str))
                ),
            ));
        }
        if constraints
            .allowed_fields
            .as_ref()
            .is_some_and(|signed| signed.is_empty())
        {
            // Minted before empty lists were refused at grant: it shows no
            // field, and is never taken for "no filter".
            return Err(Self::deny(
                capability,
                principal,
                DenialCategory::InvalidConstraint,
                format!(
                    "token's '{}' is empty, which this policy never grants; request a new grant",
                    Constraints::ALLOWED_FIELDS
                ),
            ));
        }
        if let Some(enforced) = Self::enforced_fields(capability, principal) {
            // Non-empty (checked above) and within the enforced list.
            let ok = constraints
                .allowed_fields
                .as_ref()
                .is_some_and(|signed| signed.iter().all(|f| enforced.contains(f)));
            if !ok {
                return Err(Self::deny(
                    capability,
                    principal,
                    DenialCategory::InvalidConstraint,
                    format!(
                        "token lacks the allowed_fields constraint the policy now requires for '{}'; request a new grant",
                        capability.capability_id
                    ),
                ));
            }
        }
        let cap = Self::row_cap(principal);
        let max_rows = match constraints.max_rows {
            None => cap,
            Some(n) if n <= cap => n,
            Some(n) => {
                return Err(Self::deny(
                    capability,
                    principal,
                    DenialCategory::InvalidConstraint,
                    format!("token's max_rows {n} exceeds the principal's current cap of {cap}"),
                ));
            }
        };
        self.rate_check(SCOPE_INVOKE, capability, principal)?;
        Ok(InvokeDecision { max_rows })
    }
}

/// A requested `max_rows` clamped to `[0, cap]`, or `None` if it is not an integer.
fn clamp_requested_rows(v: &Value, cap: u64) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n.min(cap));
    }
    if v.as_i64().is_some() {
        // negative
        return Some(0);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{ManualClock, Timestamp};
    use serde_json::json;

    fn cap(class: SafetyClass, sens: SensitivityTag) -> Capability {
        Capability::new("t.cap", "T", "test", class)
            .with_sensitivity(sens)
            .with_allowed_fields(["id", "name"])
    }

    fn p(roles: &[&str]) -> Principal {
        Principal::new("u1")
            .with_roles(roles.iter().copied())
            .with_attribute("tenant", "acme")
    }

    fn req() -> CapabilityRequest {
        CapabilityRequest::new("t.cap", "goal")
    }

    const J: &str = "a long enough justification";

    fn category(r: Result<PolicyDecision>) -> &'static str {
        r.unwrap_err().denial_category().unwrap().as_str()
    }

    #[test]
    fn read_allowed_with_default_row_cap() {
        let e = DefaultPolicyEngine::new();
        let d = e
            .evaluate(
                &req(),
                &cap(SafetyClass::Read, SensitivityTag::None),
                &p(&["reader"]),
                "",
            )
            .unwrap();
        assert!(d.allowed);
        assert_eq!(d.constraints.max_rows, Some(50));
        assert_eq!(d.constraints.allowed_fields, None);
    }

    #[test]
    fn write_rules() {
        let e = DefaultPolicyEngine::new();
        let c = cap(SafetyClass::Write, SensitivityTag::None);
        assert_eq!(
            category(e.evaluate(&req(), &c, &p(&["reader"]), J)),
            "missing_role"
        );
        assert_eq!(
            category(e.evaluate(&req(), &c, &p(&["writer"]), "  short   ")),
            "insufficient_justification"
        );
        // 15 characters exactly after trimming passes; 14 fails
        assert!(
            e.evaluate(&req(), &c, &p(&["writer"]), "  123456789012345  ")
                .is_ok()
        );
        assert_eq!(
            category(e.evaluate(&req(), &c, &p(&["writer"]), "12345678901234")),
            "insufficient_justification"
        );
        assert!(e.evaluate(&req(), &c, &p(&["admin"]), J).is_ok());
        // role is checked before justification
        let err = e.evaluate(&req(), &c, &p(&["reader"]), "").unwrap_err();
        assert_eq!(err.denial_category(), Some(DenialCategory::MissingRole));
        assert!(err.to_string().contains("u1") && err.to_string().contains("[reader]"));
    }

    #[test]
    fn destructive_rules() {
        let e = DefaultPolicyEngine::new();
        let c = cap(SafetyClass::Destructive, SensitivityTag::None);
        assert_eq!(
            category(e.evaluate(&req(), &c, &p(&["writer"]), J)),
            "missing_role"
        );
        assert_eq!(
            category(e.evaluate(&req(), &c, &p(&["admin"]), "too short")),
            "insufficient_justification"
        );
        assert!(e.evaluate(&req(), &c, &p(&["admin"]), J).is_ok());
    }

    #[test]
    fn pii_needs_tenant_and_enforces_fields_unless_pii_reader() {
        let e = DefaultPolicyEngine::new();
        for sens in [SensitivityTag::Pii, SensitivityTag::Pci] {
            let c = cap(SafetyClass::Read, sens);
            let no_tenant = Principal::new("u1").with_roles(["reader"]);
            assert_eq!(
                category(e.evaluate(&req(), &c, &no_tenant, "")),
                "missing_tenant_attribute"
            );
            let d = e.evaluate(&req(), &c, &p(&["reader"]), "").unwrap();
            assert_eq!(
                d.constraints.allowed_fields.as_deref(),
                Some(&["id".to_owned(), "name".to_owned()][..])
            );
            let d = e
                .evaluate(&req(), &c, &p(&["reader", "pii_reader"]), "")
                .unwrap();
            assert_eq!(d.constraints.allowed_fields, None);
        }
        // a request may narrow the enforced list but not widen it
        let c = cap(SafetyClass::Read, SensitivityTag::Pii);
        let r = req().with_constraint("allowed_fields", json!(["id", "email"]));
        let d = e.evaluate(&r, &c, &p(&["reader"]), "").unwrap();
        assert_eq!(
            d.constraints.allowed_fields.as_deref(),
            Some(&["id".to_owned()][..])
        );
        let r = req().with_constraint("allowed_fields", json!("id"));
        assert_eq!(
            category(e.evaluate(&r, &c, &p(&["reader"]), "")),
            "invalid_constraint"
        );
    }

    #[test]
    fn pii_tenant_checked_after_safety_class() {
        let e = DefaultPolicyEngine::new();
        let c = cap(SafetyClass::Write, SensitivityTag::Pii);
        let no_tenant = Principal::new("u1").with_roles(["reader"]);
        assert_eq!(
            category(e.evaluate(&req(), &c, &no_tenant, J)),
            "missing_role"
        );
        let no_tenant_writer = Principal::new("u1").with_roles(["writer"]);
        assert_eq!(
            category(e.evaluate(&req(), &c, &no_tenant_writer, "")),
            "insufficient_justification"
        );
        assert_eq!(
            category(e.evaluate(&req(), &c, &no_tenant_writer, J)),
            "missing_tenant_attribute"
        );
    }

    #[test]
    fn secrets_rules() {
        let e = DefaultPolicyEngine::new();
        let c = cap(SafetyClass::Read, SensitivityTag::Secrets);
        assert_eq!(
            category(e.evaluate(&req(), &c, &p(&["reader"]), J)),
            "missing_role"
        );
        assert_eq!(
            category(e.evaluate(&req(), &c, &p(&["secrets_reader"]), "short")),
            "insufficient_justification"
        );
        assert!(e.evaluate(&req(), &c, &p(&["secrets_reader"]), J).is_ok());
        assert!(e.evaluate(&req(), &c, &p(&["admin"]), J).is_ok());
    }

    #[test]
    fn max_rows_clamped_or_denied() {
        let e = DefaultPolicyEngine::new();
        let c = cap(SafetyClass::Read, SensitivityTag::None);
        let rows = |v: Value, roles: &[&str]| {
            e.evaluate(&req().with_constraint("max_rows", v), &c, &p(roles), "")
                .map(|d| d.constraints.max_rows)
        };
        assert_eq!(rows(json!(10), &["reader"]).unwrap(), Some(10));
        assert_eq!(rows(json!(1000), &["reader"]).unwrap(), Some(50));
        assert_eq!(rows(json!(1000), &["service"]).unwrap(), Some(500));
        assert_eq!(rows(json!(-5), &["reader"]).unwrap(), Some(0));
        assert_eq!(rows(json!(u64::MAX), &["reader"]).unwrap(), Some(50));
        for bad in [json!("ten"), json!(2.5), json!(null), json!([1])] {
            let err = rows(bad.clone(), &["reader"]).unwrap_err();
            assert_eq!(
                err.denial_category(),
                Some(DenialCategory::InvalidConstraint),
                "{bad}"
            );
        }
        let d = e.evaluate(&req(), &c, &p(&["service"]), "").unwrap();
        assert_eq!(d.constraints.max_rows, Some(500));
        // unknown constraint keys are refused, named, never signed
        let err = e
            .evaluate(
                &req().with_constraint("region", json!("eu")),
                &c,
                &p(&["reader"]),
                "",
            )
            .unwrap_err();
        assert_eq!(
            err.denial_category(),
            Some(DenialCategory::InvalidConstraint)
        );
        assert!(err.to_string().contains("'region'"), "{err}");
        assert!(!err.to_string().contains("eu'"), "{err}");
        // many unknown keys: eight named, the rest counted
        let mut many = req();
        for i in 0..10 {
            many = many.with_constraint(format!("k{i}"), json!(i));
        }
        let err = e.evaluate(&many, &c, &p(&["reader"]), "").unwrap_err();
        assert!(err.to_string().contains("and 2 more"), "{err}");
    }

    #[test]
    fn visible_len_skips_invisible_characters() {
        assert_eq!(visible_len(""), 0);
        assert_eq!(visible_len("abc"), 3);
        assert_eq!(visible_len(" a\tb\nc\u{00A0}"), 3);
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{202E}',
            '\u{2066}',
            '\u{180E}',
            '\u{E0041}',
            '\u{FE0F}',
            '\u{0301}',
            '\u{3164}',
            '\u{2800}',
            '\u{0000}',
            '\u{007F}',
            '\u{0085}',
            '\u{2028}',
            '\u{3000}',
        ] {
            assert_eq!(visible_len(&c.to_string()), 0, "U+{:04X}", u32::from(c));
        }
        // letters of any script count
        assert_eq!(visible_len("été Ünïcødé 日本語 ملف"), 16);
    }

    #[test]
    fn narrowing_settles_the_field_list() {
        let e = DefaultPolicyEngine::new();
        let c = cap(SafetyClass::Read, SensitivityTag::Pii);
        let fields = |v: Value, roles: &[&str]| {
            e.evaluate(
                &req().with_constraint("allowed_fields", v),
                &c,
                &p(roles),
                "",
            )
            .map(|d| d.constraints.allowed_fields.map(|f| f.to_vec()))
        };
        // repeats and blank names dropped, order kept
        assert_eq!(
            fields(json!(["name", "", "id", "name"]), &["reader"]).unwrap(),
            Some(vec!["name".to_owned(), "id".to_owned()])
        );
        // a pii_reader may narrow to fields outside the capability's list
        assert_eq!(
            fields(json!(["email"]), &["reader", "pii_reader"]).unwrap(),
            Some(vec!["email".to_owned()])
        );
        for (v, roles) in [
            (json!([]), &["reader"][..]),
            (json!(["email"]), &["reader"]),
            (json!([" "]), &["reader", "pii_reader"]),
        ] {
            let err = fields(v.clone(), roles).unwrap_err();
            assert_eq!(
                err.denial_category(),
                Some(DenialCategory::InvalidConstraint),
                "{v}"
            );
            assert!(err.to_string().contains("would show no field"), "{err}");
        }
        // the message names the capability's allowed fields (configuration), not the request
        let err = fields(json!(["secret_notes"]), &["reader"]).unwrap_err();
        assert!(err.to_string().contains("[id, name]"), "{err}");
        assert!(!err.to_string().contains("secret_notes"), "{err}");
    }

    #[test]
    fn rate_limits_per_class_with_service_multiplier() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
        let e = DefaultPolicyEngine::builder()
            .clock(clock.clone())
            .build()
            .unwrap();
        let c = cap(SafetyClass::Destructive, SensitivityTag::None);
        let admin = p(&["admin"]);
        assert!(e.evaluate(&req(), &c, &admin, J).is_ok());
        assert!(e.evaluate(&req(), &c, &admin, J).is_ok());
        assert_eq!(category(e.evaluate(&req(), &c, &admin, J)), "rate_limited");
        clock.advance(Duration::from_secs(60));
        assert!(e.evaluate(&req(), &c, &admin, J).is_ok());

        let svc = Principal::new("svc").with_roles(["admin", "service"]);
        for _ in 0..20 {
            assert!(e.evaluate(&req(), &c, &svc, J).is_ok());
        }
        assert_eq!(category(e.evaluate(&req(), &c, &svc, J)), "rate_limited");

        let w = cap(SafetyClass::Write, SensitivityTag::None);
        let writer = Principal::new("writer-1").with_roles(["writer"]);
        for _ in 0..10 {
            assert!(e.evaluate(&req(), &w, &writer, J).is_ok());
        }
        assert_eq!(category(e.evaluate(&req(), &w, &writer, J)), "rate_limited");

        let r = Capability::new("t.read", "R", "read", SafetyClass::Read);
        for _ in 0..60 {
            assert!(e.evaluate(&req(), &r, &writer, "").is_ok());
        }
        assert_eq!(
            category(e.evaluate(&req(), &r, &writer, "")),
            "rate_limited"
        );
    }

    #[test]
    fn invalid_limits_refused_at_construction() {
        let err = DefaultPolicyEngine::builder()
            .rate_limit(SafetyClass::Read, 0, Duration::from_secs(1))
            .build();
        assert_eq!(err.unwrap_err().kind(), "invalid_config");
        let err = DefaultPolicyEngine::builder()
            .rate_limit(SafetyClass::Write, 5, Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("WRITE"), "{err}");
        assert!(
            DefaultPolicyEngine::builder()
                .max_rate_keys(0)
                .build()
                .is_err()
        );
        let e = DefaultPolicyEngine::builder()
            .rate_limit(SafetyClass::Read, 3, Duration::from_secs(1))
            .build()
            .unwrap();
        // partial override keeps the other defaults
        assert_eq!(
            e.rate_limits().write,
            RateLimit::new(10, Duration::from_secs(60))
        );
        assert_eq!(e.rate_limits().read.count, 3);
    }

    #[test]
    fn invoke_rechecks_roles_fields_rows_and_rate() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
        let e = DefaultPolicyEngine::builder()
            .clock(clock.clone())
            .rate_limit(SafetyClass::Read, 2, Duration::from_secs(10))
            .build()
            .unwrap();
        let c = cap(SafetyClass::Read, SensitivityTag::Pii);
        let reader = p(&["reader"]);
        let d = e.evaluate(&req(), &c, &reader, "").unwrap();
        // grants and invocations are counted separately
        assert_eq!(
            e.evaluate_invoke(&c, &reader, &d.constraints)
                .unwrap()
                .max_rows,
            50
        );
        assert!(e.evaluate_invoke(&c, &reader, &d.constraints).is_ok());
        let err = e.evaluate_invoke(&c, &reader, &d.constraints).unwrap_err();
        assert_eq!(err.denial_category(), Some(DenialCategory::RateLimited));
        clock.advance(Duration::from_secs(10));
        assert!(e.evaluate_invoke(&c, &reader, &d.constraints).is_ok());

        // a token minted for a pii_reader, used after the role is gone: fields now required
        let unconstrained = Constraints {
            max_rows: Some(50),
            ..Constraints::default()
        };
        let err = e.evaluate_invoke(&c, &reader, &unconstrained).unwrap_err();
        assert_eq!(
            err.denial_category(),
            Some(DenialCategory::InvalidConstraint)
        );
        // rows above the current cap (a service token used by a demoted principal)
        let wide = Constraints {
            max_rows: Some(500),
            ..d.constraints.clone()
        };
        assert_eq!(
            e.evaluate_invoke(&c, &reader, &wide)
                .unwrap_err()
                .denial_category(),
            Some(DenialCategory::InvalidConstraint)
        );
        // tenant attribute removed since the grant
        let no_tenant = Principal::new("u1").with_roles(["reader"]);
        assert_eq!(
            e.evaluate_invoke(&c, &no_tenant, &d.constraints)
                .unwrap_err()
                .denial_category(),
            Some(DenialCategory::MissingTenantAttribute)
        );
        // role lost since the grant
        let w = cap(SafetyClass::Write, SensitivityTag::None);
        assert_eq!(
            e.evaluate_invoke(&w, &reader, &Constraints::default())
                .unwrap_err()
                .denial_category(),
            Some(DenialCategory::MissingRole)
        );
        // no max_rows signed → the principal's cap applies
        let svc = Principal::new("s").with_roles(["service"]);
        let plain = cap(SafetyClass::Read, SensitivityTag::None);
        assert_eq!(
            e.evaluate_invoke(&plain, &svc, &Constraints::default())
                .unwrap()
                .max_rows,
            500
        );
    }
}
