//! Routing: which drivers to try, in order, for a capability.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Maps a capability to the ordered driver ids to try.
pub trait Router: Send + Sync + fmt::Debug {
    /// The driver ids to try for `capability_id`, first that succeeds wins.
    fn route(&self, capability_id: &str) -> Cow<'_, [String]>;
}

/// A static capability → drivers map with a fallback route (default `["memory"]`).
///
/// ```
/// use agent_kernel::{Router, StaticRouter};
/// let mut r = StaticRouter::new();
/// r.add_route("billing.list_invoices", ["billing", "backup"]);
/// assert_eq!(&*r.route("billing.list_invoices"), ["billing".to_owned(), "backup".to_owned()]);
/// assert_eq!(&*r.route("anything.else"), ["memory".to_owned()]);
/// ```
#[derive(Debug, Clone)]
pub struct StaticRouter {
    routes: HashMap<String, Vec<String>>,
    fallback: Vec<String>,
}

impl Default for StaticRouter {
    fn default() -> Self {
        Self::new()
    }
}

impl StaticRouter {
    /// No explicit routes; fallback `["memory"]`.
    pub fn new() -> Self {
        Self {
            routes: HashMap::new(),
            fallback: vec!["memory".to_owned()],
        }
    }

    /// Replaces the fallback route; an empty list keeps the default `["memory"]`.
    #[must_use]
    pub fn with_fallback<I, S>(mut self, drivers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let fallback: Vec<String> = drivers.into_iter().map(Into::into).collect();
        if !fallback.is_empty() {
            self.fallback = fallback;
        }
        self
    }

    /// Adds or replaces the route of one capability.
    pub fn add_route<I, S>(&mut self, capability_id: impl Into<String>, drivers: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.routes.insert(
            capability_id.into(),
            drivers.into_iter().map(Into::into).collect(),
        );
    }

    /// Builder form of [`add_route`](Self::add_route).
    #[must_use]
    pub fn with_route<I, S>(mut self, capability_id: impl Into<String>, drivers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.add_route(capability_id, drivers);
        self
    }

    /// The fallback route.
    pub fn fallback(&self) -> &[String] {
        &self.fallback
    }
}

impl Router for StaticRouter {
    fn route(&self, capability_id: &str) -> Cow<'_, [String]> {
        Cow::Borrowed(
            self.routes
                .get(capability_id)
                .map_or(self.fallback.as_slice(), Vec::as_slice),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_then_fallback() {
        let r = StaticRouter::new()
            .with_route("a", ["x", "y"])
            .with_fallback(["z"]);
        assert_eq!(&*r.route("a"), ["x", "y"].map(String::from));
        assert_eq!(&*r.route("b"), ["z".to_owned()]);
        let r = StaticRouter::new().with_fallback(Vec::<String>::new());
        assert_eq!(r.fallback(), ["memory".to_owned()]);
        let mut r = StaticRouter::new();
        r.add_route("a", ["x"]);
        r.add_route("a", ["q"]);
        assert_eq!(&*r.route("a"), ["q".to_owned()]);
    }
}
