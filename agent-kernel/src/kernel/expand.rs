//! Expansion: a page of a stored result, held to the checks of an
//! invocation, with a small query engine (equality filter, offset, limit,
//! field projection) that sees only what the caller would see.

use std::borrow::Cow;
use std::collections::HashSet;

use agent_kernel_otel::kernel_span;
use serde_json::{Map, Value};

use super::Kernel;
use super::audit::AuditGuard;
use super::request::ExpandQuery;
use crate::error::{DenialCategory, KernelError, Result};
use crate::ids::{self, new_id};
use crate::otel::keys::OTHER;
// Read by the generated span code only.
#[cfg_attr(not(feature = "otel"), allow(unused_imports))]
use crate::otel::keys;
use crate::types::{
    ActionTrace, Args, Constraints, Frame, Handle, Principal, Provenance, ResponseMode,
    TraceOutcome,
};

impl Kernel {
    /// Expands a handle: `filter`, `offset`, `limit`, `fields`, then the firewall
    /// (table mode) with the constraints of the token that created the handle.
    ///
    /// An expansion is an invocation of the handle, held to the same checks:
    /// only the handle's principal may expand it; the creating token must still
    /// verify (not revoked, not expired); the invoke-time policy is evaluated
    /// again (roles, tenant, rate limit, the principal's current row cap); the
    /// session the handle was created in is charged for the page; and every
    /// expansion, refused ones included, leaves an audit record (its own action
    /// id, the frame's `action_id`; the provenance names the invocation that
    /// produced the data). Filters and field selections see only what the
    /// caller would see: a name that redaction would hide is refused, and a
    /// filter compares against the redacted value.
    ///
    /// Errors: [`KernelError::MalformedId`] for a handle id this kernel cannot
    /// have issued (recorded on the span as `_INVALID`),
    /// [`KernelError::HandleNotFound`], [`KernelError::HandleExpired`],
    /// [`KernelError::HandleAccessDenied`] for anyone but the handle's principal,
    /// the creating token's verification errors, the policy's denials,
    /// [`KernelError::BudgetExhausted`], and [`KernelError::PolicyDenied`]
    /// (`invalid_constraint`) for a filter or field outside the token's
    /// `allowed_fields` or one that names no visible field.
    #[kernel_span(
        name = keys::SPAN_EXPAND,
        telemetry = self.telemetry(),
        attrs(
            keys::PRINCIPAL_ID = self.caller_ids.render(&principal.principal_id),
            keys::CAPABILITY_ID = self.registry.resolve(&handle.capability_id).capability_id_attr(),
            keys::HANDLE_ID = ids::for_telemetry(&handle.handle_id),
            keys::ROWS_RETURNED = |out| out.as_ref().ok().map(|f| f.table_preview.len()),
        ),
    )]
    pub fn expand(
        &self,
        handle: &Handle,
        query: &ExpandQuery,
        principal: &Principal,
    ) -> Result<Frame> {
        let mut audit = AuditGuard::open(
            self.audit_sink(),
            self.expand_record(handle, query, principal),
        );
        audit.begin();
        let result = self.expand_authorized(handle, query, principal, &mut audit);
        audit.close(result.as_ref().err());
        result
    }

    /// The audit record of an expansion, before its checks run.
    fn expand_record(
        &self,
        handle: &Handle,
        query: &ExpandQuery,
        principal: &Principal,
    ) -> ActionTrace {
        let handle_id = ids::for_telemetry(&handle.handle_id).to_owned();
        let mut args = Args::new();
        args.insert("handle_id".to_owned(), Value::String(handle_id.clone()));
        args.insert("query".to_owned(), query.to_json());
        ActionTrace {
            action_id: new_id(),
            capability_id: if self.registry.get(&handle.capability_id).is_ok() {
                handle.capability_id.clone()
            } else {
                OTHER.to_owned()
            },
            principal_id: principal.principal_id.clone(),
            token_id: String::new(),
            invoked_at: self.clock.now(),
            args,
            requested_mode: ResponseMode::Table,
            response_mode: ResponseMode::Table,
            driver_id: String::new(),
            handle_id: Some(handle_id),
            session_id: None,
            error: None,
            denial_category: None,
            outcome: TraceOutcome::Success,
            duration: None,
            trace_id: None,
            span_id: None,
        }
    }

    /// [`expand`](Self::expand)'s checks and work; fills in the audit record
    /// as it learns the handle's token and session.
    fn expand_authorized(
        &self,
        handle: &Handle,
        query: &ExpandQuery,
        principal: &Principal,
        audit: &mut AuditGuard<'_>,
    ) -> Result<Frame> {
        ids::check("handle", &handle.handle_id)?;
        let stored = self
            .handles
            .get(&handle.handle_id, &principal.principal_id)?;
        let token = &stored.owner.token;
        audit.fill(|record| {
            record.token_id.clone_from(&token.token_id);
            record.capability_id.clone_from(&token.capability_id);
            record.session_id.clone_from(&stored.owner.session_id);
        });
        self.tokens
            .verify(token, &principal.principal_id, &token.capability_id)?;
        let capability = self.registry.get(&token.capability_id)?;
        let decision = self
            .policy
            .evaluate_invoke(capability, principal, &token.constraints)?;
        let constraints = &token.constraints;
        self.check_query_names(query, constraints, &token.capability_id, principal)?;
        let reservation = match &stored.owner.session_id {
            Some(session) => Some(self.sessions.allocate(session, None)?),
            None => None,
        };

        let cap = usize::try_from(decision.max_rows).unwrap_or(usize::MAX);
        let limit = query.limit.unwrap_or(usize::MAX);
        let take = limit.min(cap);
        let rows: Box<dyn Iterator<Item = &Value>> = match &*stored.data {
            Value::Array(items) => Box::new(items.iter()),
            other => Box::new(std::iter::once(other)),
        };
        let mut matched = rows
            .filter(|row| {
                query.filter.is_empty()
                    || row.as_object().is_some_and(|o| {
                        query.filter.iter().all(|(k, expected)| {
                            o.get(k)
                                .is_some_and(|v| self.visible_equals(k, v, expected))
                        })
                    })
            })
            .skip(query.offset);
        // A set: projecting a row costs one look-up per key, however many
        // fields the query names.
        let fields: Option<HashSet<&str>> = query
            .fields
            .as_ref()
            .map(|fields| fields.iter().map(String::as_str).collect());
        // Rows are copied no deeper than the firewall looks (it withholds
        // what lies below, whatever it holds): the copy, like every walk
        // over the result, stops at the depth limit.
        let max_depth = self
            .limits
            .max_depth
            .min(crate::firewall::MAX_DEPTH_CEILING);
        let selected: Vec<Value> = matched
            .by_ref()
            .take(take)
            .map(|row| match (&fields, row) {
                (Some(fields), Value::Object(o)) => Value::Object(
                    o.iter()
                        .filter(|(k, _)| fields.contains(k.as_str()))
                        .map(|(k, v)| (k.clone(), copy_to_depth(v, 2, max_depth)))
                        .collect(),
                ),
                (_, other) => copy_to_depth(other, 1, max_depth),
            })
            .collect();
        let mut warnings = Vec::new();
        if limit > cap && matched.next().is_some() {
            warnings.push(format!(
                "expansion limited to {cap} rows by the token's max_rows."
            ));
        }
        let data = Value::Array(selected);
        let fw = self.off_the_worker(&data, || {
            self.apply_firewall(
                &data,
                ResponseMode::Table,
                ResponseMode::Table,
                constraints,
                cap as u64,
            )
        });
        warnings.extend(fw.warnings);
        let frame = Frame {
            action_id: audit.action_id().to_owned(),
            capability_id: stored.handle.capability_id.clone(),
            response_mode: ResponseMode::Table,
            facts: Vec::new(),
            table_preview: fw.table_preview,
            handle: Some(stored.handle.clone()),
            warnings,
            provenance: Provenance {
                capability_id: stored.handle.capability_id.clone(),
                principal_id: principal.principal_id.clone(),
                invoked_at: self.clock.now(),
                action_id: stored.owner.action_id.clone(),
            },
            raw_data: None,
        };
        let frame = match reservation {
            Some(reservation) => self
                .charge_frame(reservation, frame)
                .map_err(|overdraft| self.budget_exhausted(overdraft))?,
            None => frame,
        };
        log::info!(
            "expand handle_id={} principal_id={}",
            handle.handle_id,
            self.caller_ids.for_log(&principal.principal_id)
        );
        Ok(frame)
    }

    /// Refuses a filter key or field name outside the token's
    /// `allowed_fields` (an empty list allows none), and one that redaction
    /// would hide (the caller sees such a key as `[REDACTED]`, so naming it
    /// would confirm a hidden value). The name is not quoted raw.
    fn check_query_names(
        &self,
        query: &ExpandQuery,
        constraints: &Constraints,
        capability_id: &str,
        principal: &Principal,
    ) -> Result<()> {
        let redactor = self.firewall.redactor();
        for name in query.filter.keys().chain(query.fields.iter().flatten()) {
            let reason = if matches!(redactor.redact_str(name), Cow::Owned(_)) {
                "a filter or field names no visible field".to_owned()
            } else if constraints
                .allowed_fields
                .as_deref()
                .is_some_and(|allowed| !allowed.iter().any(|a| a == name))
            {
                format!("field '{name}' is not in the token's allowed_fields")
            } else {
                continue;
            };
            return Err(KernelError::PolicyDenied {
                capability_id: capability_id.to_owned(),
                principal_id: principal.principal_id.clone(),
                reason,
                category: DenialCategory::InvalidConstraint,
            });
        }
        Ok(())
    }

    /// Whether a stored field, as the caller would see it after redaction,
    /// equals `expected`. Filters compare against what is visible, never the
    /// raw value, so a filter cannot confirm a guessed e-mail address or card
    /// number that redaction hides.
    fn visible_equals(&self, key: &str, value: &Value, expected: &Value) -> bool {
        if crate::firewall::is_sensitive_field_name(key) {
            return expected.as_str() == Some(crate::firewall::REDACTED);
        }
        match (value, expected) {
            (Value::String(s), Value::String(e)) => {
                self.firewall.redactor().redact_str(s) == e.as_str()
            }
            // Nested values may hold what redaction hides at depth: no match.
            (Value::String(_) | Value::Array(_) | Value::Object(_), _) => false,
            // A number the digit rules redact (a card held as a JSON number)
            // shows as `[REDACTED]`.
            (Value::Number(n), _) if !self.firewall.redactor().number_kinds(n).is_empty() => {
                expected.as_str() == Some(crate::firewall::REDACTED)
            }
            _ => value == expected,
        }
    }
}

/// A copy of `value` (sitting at `depth`) down to `max_depth`: an array or
/// object at `max_depth` or deeper is copied empty. The firewall withholds
/// such a value whole (one [`DEPTH_MARKER`](crate::firewall::DEPTH_MARKER),
/// one count), so it sees the copy as it would the original; the recursion
/// is bounded by the depth limit, not by the value.
fn copy_to_depth(value: &Value, depth: usize, max_depth: usize) -> Value {
    match value {
        Value::Array(_) if depth >= max_depth => Value::Array(Vec::new()),
        Value::Object(_) if depth >= max_depth => Value::Object(Map::new()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| copy_to_depth(v, depth + 1, max_depth))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), copy_to_depth(v, depth + 1, max_depth)))
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod depth_tests {
    use serde_json::json;

    use super::copy_to_depth;
    use crate::firewall::{Budgets, Firewall};

    #[test]
    fn the_firewall_sees_a_depth_limited_copy_as_the_original() {
        let mut deep = json!({"password": "hunter2", "email": "user@example.com"});
        for i in 0..200 {
            deep = if i % 2 == 0 {
                json!([deep, 1])
            } else {
                json!({"k": deep, "n": i})
            };
        }
        let row = json!({"id": 1, "nested": deep, "list": [[["x"]]], "mail": "a@example.com"});
        for max_depth in [0, 1, 2, 3, 5, 64] {
            let firewall = Firewall::new(Budgets {
                max_depth,
                ..Budgets::default()
            });
            let copy = copy_to_depth(&row, 1, max_depth);
            assert_eq!(
                firewall.table_rows(std::slice::from_ref(&row), None, None),
                firewall.table_rows(&[copy], None, None),
                "max_depth={max_depth}"
            );
        }
    }
}
