//! The capability registry: registration, lookup and keyword search.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{KernelError, Result};
use crate::types::{Capability, CapabilityRequest};

/// Default number of results [`CapabilityRegistry::search`] returns.
pub const DEFAULT_MAX_RESULTS: usize = 10;

#[derive(Debug)]
struct Entry {
    capability: Arc<Capability>,
    /// The id once more, shared: telemetry records it on every call without
    /// copying it.
    label: Arc<str>,
    /// `id name description tags…`, lower-cased, precomputed for search.
    corpus: String,
}

/// A capability id looked up in the registry: the entry when registered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved<'a> {
    entry: Option<&'a Entry>,
}

impl<'a> Resolved<'a> {
    /// The capability, when registered.
    pub(crate) fn capability(self) -> Option<&'a Arc<Capability>> {
        self.entry.map(|e| &e.capability)
    }

    /// The capability's id as a shared string (telemetry records it on
    /// every call without copying it), when registered.
    pub(crate) fn label(self) -> Option<&'a Arc<str>> {
        self.entry.map(|e| &e.label)
    }

    /// The capability, or [`KernelError::CapabilityNotFound`] naming `capability_id`.
    pub(crate) fn require(self, capability_id: &str) -> Result<&'a Arc<Capability>> {
        self.capability()
            .ok_or_else(|| KernelError::CapabilityNotFound {
                capability_id: capability_id.to_owned(),
            })
    }
}

/// Stores capabilities by id, in registration order.
///
/// ```
/// use agent_kernel::{Capability, CapabilityRegistry, SafetyClass};
/// let mut reg = CapabilityRegistry::new();
/// reg.register(Capability::new("billing.list_invoices", "List invoices", "List all invoices", SafetyClass::Read))?;
/// assert!(reg.register(Capability::new("billing.list_invoices", "x", "y", SafetyClass::Read)).is_err());
/// let hits = reg.search("list my invoices", 10);
/// assert_eq!(hits[0].capability_id, "billing.list_invoices");
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Debug, Default)]
pub struct CapabilityRegistry {
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
}

impl CapabilityRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a capability; a duplicate id is refused.
    pub fn register(&mut self, capability: Capability) -> Result<()> {
        if self.by_id.contains_key(&capability.capability_id) {
            return Err(KernelError::CapabilityAlreadyRegistered {
                capability_id: capability.capability_id,
            });
        }
        let mut corpus = String::with_capacity(
            capability.capability_id.len()
                + capability.name.len()
                + capability.description.len()
                + 16,
        );
        for part in [
            &capability.capability_id,
            &capability.name,
            &capability.description,
        ]
        .into_iter()
        .chain(capability.tags.iter())
        {
            if !corpus.is_empty() {
                corpus.push(' ');
            }
            corpus.push_str(part);
        }
        let corpus = corpus.to_lowercase();
        self.by_id
            .insert(capability.capability_id.clone(), self.entries.len());
        self.entries.push(Entry {
            label: Arc::from(capability.capability_id.as_str()),
            capability: Arc::new(capability),
            corpus,
        });
        Ok(())
    }

    /// Registers several capabilities, stopping at the first duplicate.
    pub fn register_many(
        &mut self,
        capabilities: impl IntoIterator<Item = Capability>,
    ) -> Result<()> {
        capabilities.into_iter().try_for_each(|c| self.register(c))
    }

    /// The capability with this id.
    pub fn get(&self, capability_id: &str) -> Result<&Arc<Capability>> {
        self.by_id
            .get(capability_id)
            .and_then(|&i| self.entries.get(i))
            .map(|e| &e.capability)
            .ok_or_else(|| KernelError::CapabilityNotFound {
                capability_id: capability_id.to_owned(),
            })
    }

    /// The registry entry of `capability_id`, looked up once per call and
    /// passed by reference to the stages (and the spans) that need it.
    pub(crate) fn resolve(&self, capability_id: &str) -> Resolved<'_> {
        Resolved {
            entry: self
                .by_id
                .get(capability_id)
                .and_then(|&i| self.entries.get(i)),
        }
    }

    /// Whether a capability with this id is registered.
    pub fn contains(&self, capability_id: &str) -> bool {
        self.by_id.contains_key(capability_id)
    }

    /// All capabilities in registration order.
    pub fn list_all(&self) -> impl ExactSizeIterator<Item = &Arc<Capability>> {
        self.entries.iter().map(|e| &e.capability)
    }

    /// Number of registered capabilities.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Finds capabilities matching a goal.
    ///
    /// The goal is lower-cased and split into `[a-z0-9]+` tokens; a capability
    /// scores one point per token (repeats count again) that occurs as a substring
    /// of its lower-cased `id name description tags`. Zero scores are dropped;
    /// results are ordered by score descending, then id ascending, and cut at
    /// `max_results`.
    pub fn search(&self, goal: &str, max_results: usize) -> Vec<CapabilityRequest> {
        let lowered = goal.to_lowercase();
        let tokens: Vec<&str> = lowered
            .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
            .filter(|t| !t.is_empty())
            .collect();
        if tokens.is_empty() || max_results == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(usize, &Arc<Capability>)> = self
            .entries
            .iter()
            .filter_map(|e| {
                let score = tokens.iter().filter(|t| e.corpus.contains(**t)).count();
                (score > 0).then_some((score, &e.capability))
            })
            .collect();
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.capability_id.cmp(&b.1.capability_id))
        });
        scored
            .into_iter()
            .take(max_results)
            .map(|(_, c)| CapabilityRequest::new(c.capability_id.clone(), goal))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SafetyClass;

    fn reg() -> CapabilityRegistry {
        let mut r = CapabilityRegistry::new();
        r.register_many([
            Capability::new(
                "billing.list_invoices",
                "List Invoices",
                "List all invoices",
                SafetyClass::Read,
            )
            .with_tags(["billing", "invoices"]),
            Capability::new(
                "billing.get_invoice",
                "Get Invoice",
                "Fetch one invoice by id",
                SafetyClass::Read,
            ),
            Capability::new(
                "crm.list_customers",
                "List Customers",
                "All customers",
                SafetyClass::Read,
            )
            .with_tags(["crm"]),
        ])
        .unwrap();
        r
    }

    #[test]
    fn duplicate_is_refused_and_unknown_named() {
        let mut r = reg();
        let err = r
            .register(Capability::new(
                "crm.list_customers",
                "x",
                "y",
                SafetyClass::Read,
            ))
            .unwrap_err();
        assert_eq!(err.kind(), "capability_already_registered");
        assert!(err.to_string().contains("crm.list_customers"));
        let err = r.get("nope.missing").unwrap_err();
        assert_eq!(
            err,
            KernelError::CapabilityNotFound {
                capability_id: "nope.missing".into()
            }
        );
        assert!(err.to_string().contains("nope.missing"));
        assert_eq!(r.len(), 3);
        assert_eq!(
            r.list_all()
                .map(|c| c.capability_id.as_str())
                .collect::<Vec<_>>(),
            vec![
                "billing.list_invoices",
                "billing.get_invoice",
                "crm.list_customers"
            ]
        );
    }

    #[test]
    fn search_scores_orders_and_ties_by_id() {
        let r = reg();
        // "invoice" hits both billing caps (1 point each), "list" hits list_invoices and list_customers.
        let hits: Vec<String> = r
            .search("List INVOICE", 10)
            .into_iter()
            .map(|h| h.capability_id)
            .collect();
        assert_eq!(
            hits,
            vec![
                "billing.list_invoices",
                "billing.get_invoice",
                "crm.list_customers"
            ]
        );
        // tie on score 1 → id ascending
        let hits: Vec<String> = r
            .search("customers", 10)
            .into_iter()
            .map(|h| h.capability_id)
            .collect();
        assert_eq!(hits, vec!["crm.list_customers"]);
        assert!(r.search("zzz", 10).is_empty());
        assert!(r.search("!!! ???", 10).is_empty());
        assert_eq!(r.search("list invoice", 1).len(), 1);
        assert_eq!(r.search("list", 10)[0].goal, "list");
    }

    #[test]
    fn search_counts_repeated_tokens_and_matches_tags() {
        let r = reg();
        // "crm" only in crm's id and tag; repeated token counts twice but ordering still by score
        let hits = r.search("crm crm billing", 10);
        assert_eq!(hits[0].capability_id, "crm.list_customers");
        assert_eq!(hits.len(), 3);
    }
}
