//! Value types shared across the kernel: safety classes, sensitivity tags,
//! response modes (with the stable string forms used in telemetry labels), and
//! the records that flow through an invocation: capabilities, principals,
//! requests, decisions, grants, raw results, handles, frames and traces.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::time::Timestamp;
use crate::token::CapabilityToken;

/// Arguments of an invocation: a JSON object.
pub type Args = Map<String, Value>;

/// How dangerous a capability is; decides which roles and justification it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SafetyClass {
    /// Reads data; no side effects.
    Read,
    /// Changes data.
    Write,
    /// Deletes or irreversibly changes data.
    Destructive,
}

impl SafetyClass {
    /// The stable upper-case form used in telemetry labels (`READ`, `WRITE`, `DESTRUCTIVE`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Destructive => "DESTRUCTIVE",
        }
    }
}

/// What kind of sensitive data a capability's output may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SensitivityTag {
    /// Nothing sensitive.
    None,
    /// Personally identifiable information.
    Pii,
    /// Payment card data.
    Pci,
    /// Credentials and other secrets.
    Secrets,
}

impl SensitivityTag {
    /// The stable upper-case form used in telemetry labels (`NONE`, `PII`, `PCI`, `SECRETS`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Pii => "PII",
            Self::Pci => "PCI",
            Self::Secrets => "SECRETS",
        }
    }
}

/// How much of a tool's output the caller receives in its [`Frame`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Deterministic facts about the output (the default).
    #[default]
    Summary,
    /// A bounded table preview.
    Table,
    /// Only a handle to the stored output.
    HandleOnly,
    /// The redacted output itself (admins only).
    Raw,
}

impl ResponseMode {
    /// The stable lower-case form (`summary`, `table`, `handle_only`, `raw`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Table => "table",
            Self::HandleOnly => "handle_only",
            Self::Raw => "raw",
        }
    }

    /// How strict the mode is about what reaches the model: raw 0, table 1,
    /// summary 2, handle_only 3. Budget escalation only ever moves up this order.
    pub const fn strictness(self) -> u8 {
        match self {
            Self::Raw => 0,
            Self::Table => 1,
            Self::Summary => 2,
            Self::HandleOnly => 3,
        }
    }

    /// The stricter of `self` and `other`.
    ///
    /// ```
    /// use agent_kernel::ResponseMode;
    /// assert_eq!(ResponseMode::Raw.stricter(ResponseMode::Summary), ResponseMode::Summary);
    /// assert_eq!(ResponseMode::HandleOnly.stricter(ResponseMode::Table), ResponseMode::HandleOnly);
    /// ```
    pub const fn stricter(self, other: ResponseMode) -> ResponseMode {
        if self.strictness() >= other.strictness() {
            self
        } else {
            other
        }
    }
}

impl fmt::Display for ResponseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SafetyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SensitivityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ── Capabilities and principals ─────────────────────────────────────────────

/// Points a capability at a concrete driver and operation (informational).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImplementationRef {
    /// The driver that implements the capability.
    pub driver_id: String,
    /// The operation name that driver understands.
    pub operation: String,
}

/// A task-shaped unit of work that can be authorised and executed.
///
/// ```
/// use agent_kernel::{Capability, SafetyClass, SensitivityTag};
/// let cap = Capability::new("billing.list_invoices", "List invoices", "List all invoices", SafetyClass::Read)
///     .with_sensitivity(SensitivityTag::Pii)
///     .with_allowed_fields(["id", "amount"])
///     .with_tags(["billing"]);
/// assert_eq!(cap.allowed_fields.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// Stable identifier, e.g. `billing.list_invoices`.
    pub capability_id: String,
    /// Short human-readable name.
    pub name: String,
    /// What the capability does.
    pub description: String,
    /// READ / WRITE / DESTRUCTIVE.
    pub safety_class: SafetyClass,
    /// What sensitive data its output may hold.
    pub sensitivity: SensitivityTag,
    /// Fields returned to principals without the `pii_reader` role (PII/PCI only); empty = no limit.
    pub allowed_fields: Arc<[String]>,
    /// Keywords used by [`search`](crate::CapabilityRegistry::search).
    pub tags: Vec<String>,
    /// Optional pointer to the implementation.
    pub impl_ref: Option<ImplementationRef>,
}

impl Capability {
    /// The operation a driver runs for this capability: its
    /// [`impl_ref`](Self::impl_ref)'s, else the capability id.
    pub fn operation(&self) -> &str {
        self.impl_ref
            .as_ref()
            .map_or(self.capability_id.as_str(), |r| r.operation.as_str())
    }

    /// A capability with no sensitivity, no allowed-field list, no tags and no implementation reference.
    pub fn new(
        capability_id: impl Into<String>,
        name: impl Into<String>,
        description: impl Into<String>,
        safety_class: SafetyClass,
    ) -> Self {
        Self {
            capability_id: capability_id.into(),
            name: name.into(),
            description: description.into(),
            safety_class,
            sensitivity: SensitivityTag::None,
            allowed_fields: Arc::from(Vec::new()),
            tags: Vec::new(),
            impl_ref: None,
        }
    }

    /// Sets the sensitivity tag.
    #[must_use]
    pub fn with_sensitivity(mut self, sensitivity: SensitivityTag) -> Self {
        self.sensitivity = sensitivity;
        self
    }

    /// Sets the fields non-`pii_reader` principals may see.
    #[must_use]
    pub fn with_allowed_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the search tags.
    #[must_use]
    pub fn with_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the implementation reference.
    #[must_use]
    pub fn with_impl(mut self, driver_id: impl Into<String>, operation: impl Into<String>) -> Self {
        self.impl_ref = Some(ImplementationRef {
            driver_id: driver_id.into(),
            operation: operation.into(),
        });
        self
    }
}

/// The entity (agent, user, service) making a request.
///
/// ```
/// use agent_kernel::Principal;
/// let p = Principal::new("analyst-001").with_roles(["reader"]).with_attribute("tenant", "acme");
/// assert!(p.has_role("reader"));
/// assert_eq!(p.attributes.get("tenant").map(String::as_str), Some("acme"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Principal {
    /// Unique identifier.
    pub principal_id: String,
    /// Role names, e.g. `reader`, `writer`, `admin`, `service`, `pii_reader`, `secrets_reader`.
    pub roles: Vec<String>,
    /// Attributes; `tenant` matters to the policy.
    pub attributes: BTreeMap<String, String>,
}

impl Principal {
    /// A principal with no roles and no attributes.
    pub fn new(principal_id: impl Into<String>) -> Self {
        Self {
            principal_id: principal_id.into(),
            roles: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }

    /// Sets the roles.
    #[must_use]
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one attribute.
    #[must_use]
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Whether the principal has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

// ── Requests, decisions, grants ─────────────────────────────────────────────

/// A request for authorisation to use a capability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityRequest {
    /// The capability asked for.
    pub capability_id: String,
    /// Why it is needed (free text).
    pub goal: String,
    /// Requested execution constraints, e.g. `{"max_rows": 10}`; validated by the policy.
    pub constraints: Map<String, Value>,
}

impl CapabilityRequest {
    /// A request with no constraints.
    pub fn new(capability_id: impl Into<String>, goal: impl Into<String>) -> Self {
        Self {
            capability_id: capability_id.into(),
            goal: goal.into(),
            constraints: Map::new(),
        }
    }

    /// Adds one requested constraint.
    #[must_use]
    pub fn with_constraint(mut self, key: impl Into<String>, value: Value) -> Self {
        self.constraints.insert(key.into(), value);
        self
    }
}

/// Validated execution constraints, as the policy decided them and the token signs them.
///
/// Serialises as one JSON object with sorted keys: `allowed_fields` and
/// `max_rows` when set, plus any [`extra`](Self::extra) keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Constraints {
    /// Row cap for tables and expansions.
    pub max_rows: Option<u64>,
    /// Only these fields of the output reach the caller; an empty list shows
    /// none (never "no filter": that is `None`).
    pub allowed_fields: Option<Arc<[String]>>,
    /// Other constraints, signed like the rest and passed to drivers in
    /// [`ExecutionContext::constraints`](crate::ExecutionContext). The
    /// [`DefaultPolicyEngine`](crate::DefaultPolicyEngine) never puts a key
    /// here: it refuses unknown keys at grant, and a token carrying one at
    /// invoke. A custom [`PolicyEngine`](crate::PolicyEngine) may.
    pub extra: BTreeMap<String, Value>,
}

impl Constraints {
    /// Key of the row cap.
    pub const MAX_ROWS: &'static str = "max_rows";
    /// Key of the field allow-list.
    pub const ALLOWED_FIELDS: &'static str = "allowed_fields";

    /// Parses constraints strictly: `max_rows` must be a non-negative integer and
    /// `allowed_fields` an array of strings; other keys go to [`extra`](Self::extra).
    ///
    /// An error names the key and the kind of JSON value found (`a string`,
    /// `a negative integer`, …), never the value itself: the map may be
    /// caller text (a requested constraint, a presented token).
    ///
    /// ```
    /// use agent_kernel::Constraints;
    /// let map = serde_json::json!({"max_rows": "password=hunter2"});
    /// let err = Constraints::from_map(map.as_object().cloned().unwrap_or_default()).unwrap_err();
    /// assert_eq!(err, "'max_rows' must be a non-negative integer, got a string");
    /// ```
    pub fn from_map(map: Map<String, Value>) -> Result<Self, String> {
        let mut out = Constraints::default();
        for (k, v) in map {
            match k.as_str() {
                Self::MAX_ROWS => {
                    let n = v.as_u64().ok_or_else(|| {
                        format!(
                            "'max_rows' must be a non-negative integer, got {}",
                            json_kind(&v)
                        )
                    })?;
                    out.max_rows = Some(n);
                }
                Self::ALLOWED_FIELDS => out.allowed_fields = Some(parse_string_list(&v)?),
                _ => {
                    out.extra.insert(k, v);
                }
            }
        }
        Ok(out)
    }

    /// The constraints as a JSON object (sorted keys).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Keys in canonical (sorted) order with their values.
    pub(crate) fn sorted_entries(&self) -> Vec<(&str, ConstraintValue<'_>)> {
        let mut entries: Vec<(&str, ConstraintValue<'_>)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), ConstraintValue::Json(v)))
            .collect();
        if let Some(f) = &self.allowed_fields {
            entries.push((Self::ALLOWED_FIELDS, ConstraintValue::Fields(f)));
        }
        if let Some(n) = self.max_rows {
            entries.push((Self::MAX_ROWS, ConstraintValue::Int(n)));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }
}

/// One constraint value, borrowed, for canonical serialisation.
pub(crate) enum ConstraintValue<'a> {
    Int(u64),
    Fields(&'a [String]),
    Json(&'a Value),
}

impl Serialize for ConstraintValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(n) => s.serialize_u64(*n),
            Self::Fields(f) => f.serialize(s),
            Self::Json(v) => v.serialize(s),
        }
    }
}

fn parse_string_list(v: &Value) -> Result<Arc<[String]>, String> {
    let arr = v.as_array().ok_or_else(|| {
        format!(
            "'allowed_fields' must be an array of strings, got {}",
            json_kind(v)
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str().map(str::to_owned).ok_or_else(|| {
                format!(
                    "'allowed_fields' must hold only strings, got {} at index {i}",
                    json_kind(x)
                )
            })
        })
        .collect()
}

/// The kind of a JSON value, for error messages that must not quote it.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "an integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a non-integer number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Serialize for Constraints {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = self.sorted_entries();
        let mut m = s.serialize_map(Some(entries.len()))?;
        for (k, v) in &entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Constraints {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        Constraints::from_map(map).map_err(serde::de::Error::custom)
    }
}

/// The outcome of a policy evaluation that allowed the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyDecision {
    /// Always `true` for a returned decision (denials are errors).
    pub allowed: bool,
    /// Human-readable explanation.
    pub reason: String,
    /// Constraints the policy imposes; they are signed into the token.
    pub constraints: Constraints,
}

/// A signed authorisation binding a principal to a capability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapabilityGrant {
    /// The original request.
    pub request: CapabilityRequest,
    /// Whom the grant is for.
    pub principal: Principal,
    /// The decision that led to it.
    pub decision: PolicyDecision,
    /// The signed token.
    pub token: CapabilityToken,
    /// Audit id, also embedded in the token.
    pub audit_id: String,
}

// ── Results, handles, frames ────────────────────────────────────────────────

/// Unfiltered output of a driver. `data` is shared, never copied per call.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResult {
    /// The capability that produced it.
    pub capability_id: String,
    /// Arbitrary JSON.
    pub data: Arc<Value>,
    /// Driver metadata (for example HTTP status and URL).
    pub metadata: Map<String, Value>,
}

impl RawResult {
    /// A result with no metadata.
    pub fn new(capability_id: impl Into<String>, data: impl Into<Arc<Value>>) -> Self {
        Self {
            capability_id: capability_id.into(),
            data: data.into(),
            metadata: Map::new(),
        }
    }
}

/// An opaque reference to a full result kept in the [`HandleStore`](crate::HandleStore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// Unique id.
    pub handle_id: String,
    /// The capability that produced the data.
    pub capability_id: String,
    /// When it was stored.
    pub created_at: Timestamp,
    /// When it stops being expandable.
    pub expires_at: Timestamp,
    /// Rows in the stored data (array length, else 1).
    pub total_rows: usize,
}

/// Where a frame's information came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The capability invoked.
    pub capability_id: String,
    /// Who invoked it.
    pub principal_id: String,
    /// When.
    pub invoked_at: Timestamp,
    /// The invocation's action id.
    pub action_id: String,
}

/// The bounded, model-safe view of a capability result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame {
    /// The invocation's action id (pass it to `explain`).
    pub action_id: String,
    /// The capability invoked.
    pub capability_id: String,
    /// The mode actually used (may be stricter than requested).
    pub response_mode: ResponseMode,
    /// Deterministic facts (summary mode), at most 20.
    pub facts: Vec<String>,
    /// Bounded rows (table mode and expansions).
    pub table_preview: Vec<Map<String, Value>>,
    /// Reference to the full stored result (all modes but raw).
    pub handle: Option<Handle>,
    /// Non-fatal notes: redactions, fallbacks, escalations.
    pub warnings: Vec<String>,
    /// Audit provenance.
    pub provenance: Provenance,
    /// The redacted output itself (raw mode, admins only).
    pub raw_data: Option<Value>,
}

// ── Audit ───────────────────────────────────────────────────────────────────

/// How an audited invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceOutcome {
    /// A frame was returned.
    Success,
    /// The token verified but the invoke-time policy (or session budget) refused.
    Denied,
    /// No driver on the route produced a result.
    DriverError,
    /// The invocation future was dropped before it finished.
    Cancelled,
}

impl TraceOutcome {
    /// The stable snake_case label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::DriverError => "driver_error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The audit record of one invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionTrace {
    /// Unique id of the invocation.
    pub action_id: String,
    /// The capability invoked.
    pub capability_id: String,
    /// Who invoked it.
    pub principal_id: String,
    /// The token presented.
    pub token_id: String,
    /// When the invocation started.
    pub invoked_at: Timestamp,
    /// The arguments passed to the driver.
    pub args: Args,
    /// The mode requested by the caller.
    pub requested_mode: ResponseMode,
    /// The mode actually used.
    pub response_mode: ResponseMode,
    /// The driver that produced the result (`""` if none did).
    pub driver_id: String,
    /// The handle created for the result, if any.
    pub handle_id: Option<String>,
    /// The session the invocation was charged to, if any.
    pub session_id: Option<String>,
    /// The (redacted) error, when the invocation failed.
    pub error: Option<String>,
    /// The denial category, when the invocation was denied.
    pub denial_category: Option<crate::error::DenialCategory>,
    /// How it ended.
    pub outcome: TraceOutcome,
    /// Wall time from start to end of the invocation.
    pub duration: Option<Duration>,
    /// W3C trace id (32 lowercase hex digits) of the invocation's
    /// `agent_kernel.invoke` span, when it ran under live instrumentation;
    /// `None` otherwise. [`TraceStore::by_trace_id`](crate::TraceStore::by_trace_id)
    /// answers by it.
    pub trace_id: Option<String>,
    /// W3C span id (16 lowercase hex digits) of the invocation's
    /// `agent_kernel.invoke` span, when it ran under live instrumentation;
    /// `None` otherwise.
    pub span_id: Option<String>,
}

impl ActionTrace {
    /// The outcome category as a stable label: `denied:<denial category>` for
    /// denials (`denied:missing_role`), else the [`TraceOutcome`] label
    /// (`success`, `driver_error`, `cancelled`). Never free text.
    ///
    /// ```
    /// # use agent_kernel::{ActionTrace, TraceOutcome, DenialCategory};
    /// # fn check(t: &ActionTrace) {
    /// if t.outcome == TraceOutcome::Denied && t.denial_category == Some(DenialCategory::RateLimited) {
    ///     assert_eq!(t.outcome_category(), "denied:rate_limited");
    /// }
    /// # }
    /// ```
    pub fn outcome_category(&self) -> String {
        match (self.outcome, self.denial_category) {
            (TraceOutcome::Denied, Some(c)) => format!("denied:{}", c.as_str()),
            (o, _) => o.as_str().to_owned(),
        }
    }

    /// When the invocation ended: `invoked_at` plus `duration` (or `invoked_at`
    /// when no duration was recorded, or when the sum is not representable).
    pub fn ended_at(&self) -> std::time::SystemTime {
        let start = self.started_at();
        start
            .checked_add(self.duration.unwrap_or_default())
            .unwrap_or(start)
    }

    /// `invoked_at` as a [`SystemTime`](std::time::SystemTime) (the Unix epoch
    /// if not representable on this platform).
    pub fn started_at(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH
            .checked_add(Duration::from_millis(self.invoked_at.as_millis()))
            .unwrap_or(std::time::UNIX_EPOCH)
    }
}
