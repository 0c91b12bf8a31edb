//! What callers hand the kernel: an invocation ([`InvokeRequest`]), an
//! expansion query ([`ExpandQuery`]) and invocation arguments ([`args`]).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{KernelError, Result};
use crate::token::CapabilityToken;
use crate::types::{Args, Principal, ResponseMode};

/// The longest tool-call id [`InvokeRequest::check`] accepts.
pub const MAX_TOOL_CALL_ID_LEN: usize = 128;

/// One invocation: the token, who presents it, the driver arguments, the
/// requested response mode and, optionally, the session to charge.
///
/// ```
/// # use agent_kernel::*;
/// # fn demo(token: &CapabilityToken, principal: &Principal) {
/// let req = InvokeRequest::new(token, principal)
///     .with_arg("status", "overdue")
///     .with_mode(ResponseMode::Table)
///     .with_session("chat-42");
/// # let _ = req;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InvokeRequest<'a> {
    /// The signed token.
    pub token: &'a CapabilityToken,
    /// The principal presenting it (must be the token's).
    pub principal: &'a Principal,
    /// Driver arguments: data for the tool. They select nothing: the
    /// operation a driver runs is bound to the capability
    /// ([`Capability::with_impl`](crate::Capability::with_impl)).
    pub args: Args,
    /// Requested response mode.
    pub response_mode: ResponseMode,
    /// Session whose budget the invocation is charged to.
    pub session_id: Option<&'a str>,
    /// The model's id for this tool call (`gen_ai.tool.call.id`), linking the
    /// LLM's request to the execution; checked by [`check`](Self::check).
    pub tool_call_id: Option<&'a str>,
}

impl<'a> InvokeRequest<'a> {
    /// A summary-mode request with no arguments and no session.
    pub fn new(token: &'a CapabilityToken, principal: &'a Principal) -> Self {
        Self {
            token,
            principal,
            args: Args::new(),
            response_mode: ResponseMode::Summary,
            session_id: None,
            tool_call_id: None,
        }
    }

    /// Replaces the arguments.
    #[must_use]
    pub fn with_args(mut self, args: Args) -> Self {
        self.args = args;
        self
    }

    /// Adds one argument.
    #[must_use]
    pub fn with_arg(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.args.insert(key.into(), value.into());
        self
    }

    /// Sets the requested response mode.
    #[must_use]
    pub fn with_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = mode;
        self
    }

    /// Charges the invocation to `session_id`'s budget.
    #[must_use]
    pub fn with_session(mut self, session_id: &'a str) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// The model's tool-call id (for example `call_3x9…` or `toolu_01…`),
    /// recorded as `gen_ai.tool.call.id` instead of the action id.
    #[must_use]
    pub fn with_tool_call_id(mut self, tool_call_id: &'a str) -> Self {
        self.tool_call_id = Some(tool_call_id);
        self
    }

    /// Checks what the caller supplied beyond the token: a tool-call id is 1
    /// to [`MAX_TOOL_CALL_ID_LEN`] characters of `A-Z a-z 0-9 _ . : -`
    /// (telemetry records it, so it must be an id, not text). Otherwise
    /// [`KernelError::InvalidArgument`], which does not quote it.
    ///
    /// ```
    /// # use agent_kernel::*;
    /// # fn demo(token: &CapabilityToken, principal: &Principal) {
    /// assert!(InvokeRequest::new(token, principal).with_tool_call_id("call_abc-123").check().is_ok());
    /// assert!(InvokeRequest::new(token, principal).with_tool_call_id("a b").check().is_err());
    /// # }
    /// ```
    pub fn check(&self) -> Result<()> {
        match self.tool_call_id {
            Some(id)
                if id.is_empty()
                    || id.len() > MAX_TOOL_CALL_ID_LEN
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)) =>
            {
                Err(KernelError::invalid_argument(format!(
                    "a tool-call id is 1 to {MAX_TOOL_CALL_ID_LEN} characters of A-Z a-z 0-9 _ . : -"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// An expansion query over a stored result: equality `filter` (AND), then
/// `offset` and `limit`, then `fields` projection.
///
/// ```
/// use agent_kernel::ExpandQuery;
/// let q = ExpandQuery::from_json(&serde_json::json!({"filter": {"status": "paid"}, "limit": 5}))?;
/// assert_eq!(q.limit, Some(5));
/// assert!(ExpandQuery::from_json(&serde_json::json!({"limit": -1})).is_err());
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpandQuery {
    /// Keep rows whose fields equal all these values.
    pub filter: Map<String, Value>,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return at most (further capped by the token's `max_rows`).
    pub limit: Option<usize>,
    /// Keep only these fields of each row.
    pub fields: Option<Vec<String>>,
}

impl ExpandQuery {
    /// Parses a query object strictly (unknown keys, negative or non-integer
    /// numbers are [`KernelError::InvalidArgument`]).
    pub fn from_json(value: &Value) -> Result<Self> {
        Self::deserialize(value).map_err(|e| {
            // serde's message quotes the caller's values: dropped.
            let message = crate::token::unquote_values(&e.to_string());
            KernelError::invalid_argument(format!(
                "invalid expand query: {}",
                crate::otel::scrub(&message)
            ))
        })
    }

    /// The query as JSON, in the form [`from_json`](Self::from_json) reads.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("filter".to_owned(), Value::Object(self.filter.clone()));
        out.insert("offset".to_owned(), Value::from(self.offset));
        if let Some(limit) = self.limit {
            out.insert("limit".to_owned(), Value::from(limit));
        }
        if let Some(fields) = &self.fields {
            out.insert("fields".to_owned(), Value::from(fields.clone()));
        }
        Value::Object(out)
    }
}

/// Converts a JSON object into invocation [`Args`]; anything else is
/// [`KernelError::InvalidArgument`].
///
/// ```
/// let args = agent_kernel::args(serde_json::json!({"operation": "list"}))?;
/// assert_eq!(args["operation"], "list");
/// assert!(agent_kernel::args(serde_json::json!([1])).is_err());
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
pub fn args(value: Value) -> Result<Args> {
    match value {
        Value::Object(map) => Ok(map),
        // The value is the caller's: named by its JSON type, never quoted.
        other => Err(KernelError::invalid_argument(format!(
            "invocation args must be a JSON object, got {}",
            crate::types::json_kind(&other)
        ))),
    }
}
