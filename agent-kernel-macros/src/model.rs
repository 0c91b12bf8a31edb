//! The checked model: what `validate` decides about one annotated function,
//! and all that `expand` prints. Nothing here is re-derived from the
//! arguments later.

use proc_macro2::{Ident, TokenStream};
use syn::{Expr, ExprClosure, ItemFn, LitStr, Type};

use crate::item::Shape;

/// One instrumented function.
pub(crate) struct Plan {
    /// The function, as written.
    pub func: ItemFn,
    pub shape: Shape,
    /// The type the body produces (a future's `Output` for [`Shape::Future`]).
    pub output: Option<Type>,
    /// Whether the outcome is read from a `Result`.
    pub returns_result: bool,
    pub name: SpanName,
    pub kind: SpanKind,
    /// `telemetry = <expr>`.
    pub telemetry: Option<Expr>,
    /// Every key of `attrs(...)`, in declaration order.
    pub keys: Vec<DeclaredKey>,
    /// The attributes set at span start, in declaration order.
    pub pushes: Vec<Push>,
    /// The closures over the return value, in the order of their keys.
    pub returned: Vec<ExprClosure>,
    pub metrics: Vec<MetricPlan>,
}

/// The span name.
pub(crate) enum SpanName {
    /// A string literal (checked by `validate`), placed in the call site's `static`.
    Static(TokenStream),
    /// A constant path, placed in the `static` and checked by a `const` assertion.
    Const(TokenStream),
    /// Evaluated at each call (`fallback` names the site until then).
    Dynamic { expr: Expr, fallback: LitStr },
}

/// The span kind.
pub(crate) enum SpanKind {
    /// A keyword: the `SpanKind` variant.
    Static(Ident),
    /// Evaluated at each call.
    Dynamic(Expr),
}

/// When a key's value is known.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Start,
    Deferred,
    Returned,
}

/// A key of `attrs(...)`.
pub(crate) struct DeclaredKey {
    /// The span key: a string literal or a constant path.
    pub span_key: TokenStream,
    /// What `record` finds it by (for a constant: the constant).
    pub record_key: TokenStream,
    /// Identifier and constant keys: the label key drops `agent_kernel.`.
    pub namespaced: bool,
    pub place: Place,
    /// Whether the key is a constant path (checked for duplicates by a
    /// `const` assertion rather than here).
    pub is_const: bool,
}

/// One attribute set at span start; `index` is its position among the
/// start-time keys (the index into the site's `labelled` table).
pub(crate) struct Push {
    pub index: usize,
    pub span_key: TokenStream,
    pub value: PushValue,
}

pub(crate) enum PushValue {
    /// A parameter declared `&'static str`: recorded without a copy.
    StaticParam(Ident),
    /// Another parameter, borrowed.
    Param(Ident),
    /// An expression, evaluated in a closure of its own.
    Expr(Expr),
    /// A string literal.
    Lit(LitStr),
}

/// Which outcomes a metric records (`When` variant).
pub(crate) type When = Ident;

/// One metric.
pub(crate) struct MetricPlan {
    /// The bare label keys: an array expression, or a constant's `labels()`.
    pub labels: LabelList,
    pub desc: MetricDesc,
    pub when: When,
    /// Where `const` assertions about this metric point.
    pub span: proc_macro2::Span,
}

pub(crate) enum LabelList {
    /// Written in `labels(...)`: each a string literal or a constant.
    Inline(Vec<TokenStream>),
    /// `PATH.labels()` of a metric constant.
    Const(syn::Path),
}

pub(crate) enum MetricDesc {
    Inline {
        name: TokenStream,
        /// The name is a constant: checked by a `const` assertion.
        name_is_const: bool,
        histogram: Option<Ident>,
        unit: String,
        description: TokenStream,
        buckets: Buckets,
    },
    Counter(syn::Path),
    Histogram(syn::Path),
}

pub(crate) enum Buckets {
    None,
    Lit(Vec<f64>),
    /// A constant: checked by a `const` assertion.
    Const(syn::Path),
}
