//! The annotated item: it must be a function with a body that can be
//! instrumented at run time.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, Block, Expr, Item, ItemFn, Signature, Stmt, TraitItemFn, Type};

/// The function being instrumented.
pub(crate) struct Func {
    pub item: ItemFn,
}

/// How the body runs.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    /// A plain function.
    Sync,
    /// `async fn`.
    Async,
    /// A non-async function whose last expression is `async { .. }` or
    /// `Box::pin(async { .. })` (what `#[async_trait]` generates): the future
    /// is instrumented.
    Future,
}

fn is_named(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

/// The annotated item, parsed.
pub(crate) enum Parsed {
    /// A function whose body parses.
    Func(Func),
    /// A function whose body does not parse (yet): its signature, with an
    /// empty body, so the arguments can still be checked against it.
    Unparsed(Func),
}

/// A function whose body is kept as tokens (what tracing-attributes calls
/// `MaybeItemFn`).
struct MaybeFn {
    attrs: Vec<Attribute>,
    vis: syn::Visibility,
    sig: Signature,
}

impl syn::parse::Parse for MaybeFn {
    fn parse(input: syn::parse::ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let _body: proc_macro2::Group = input.parse()?;
        Ok(MaybeFn { attrs, vis, sig })
    }
}

/// Parses and checks the item.
pub(crate) fn parse(item: TokenStream) -> syn::Result<Parsed> {
    let (parsed, body_parsed) = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(f)) => (f, true),
        Ok(Item::Verbatim(ts)) => return Err(verbatim_error(ts)),
        Ok(other) => return Err(not_a_function(&other)),
        Err(e) => match syn::parse2::<TraitItemFn>(item.clone()) {
            Ok(f) => return Err(no_body(&f.sig)),
            Err(_) => match syn::parse2::<MaybeFn>(item) {
                Ok(f) => (
                    ItemFn {
                        attrs: f.attrs,
                        vis: f.vis,
                        sig: f.sig,
                        block: Box::new(syn::parse_quote!({})),
                    },
                    false,
                ),
                Err(_) => return Err(e),
            },
        },
    };
    check_signature(&parsed.sig)?;
    for attr in &parsed.attrs {
        if is_named(attr, "kernel_span") {
            return Err(syn::Error::new(
                attr.path().span(),
                "duplicate `#[kernel_span]`: a function gets one span; use nested functions for more",
            ));
        }
        if is_named(attr, "async_trait") {
            return Err(syn::Error::new(
                attr.path().span(),
                "`#[async_trait]` goes on the `impl` or `trait` block, not on the method; `#[kernel_span]` on the method then works as is",
            ));
        }
    }
    let func = Func { item: parsed };
    Ok(if body_parsed {
        Parsed::Func(func)
    } else {
        Parsed::Unparsed(func)
    })
}

/// The item to emit beside an error: unchanged, except that an
/// `#[async_trait]` placed on the method itself is dropped (it would only add
/// a second, confusing error from async-trait).
pub(crate) fn without_misplaced_attrs(item: TokenStream) -> TokenStream {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(mut f) if f.attrs.iter().any(|a| is_named(a, "async_trait")) => {
            f.attrs.retain(|a| !is_named(a, "async_trait"));
            f.into_token_stream()
        }
        _ => item,
    }
}

fn verbatim_error(ts: TokenStream) -> syn::Error {
    match syn::parse2::<TraitItemFn>(ts.clone()) {
        Ok(f) if f.default.is_none() => no_body(&f.sig),
        _ => syn::Error::new(
            ts.into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span()),
            "`#[kernel_span]` goes on a function or method with a body",
        ),
    }
}

fn no_body(sig: &Signature) -> syn::Error {
    syn::Error::new(
        sig.ident.span(),
        format!(
            "`{}` has no body to instrument; put `#[kernel_span]` on the implementations of this trait method",
            sig.ident
        ),
    )
}

fn not_a_function(item: &Item) -> syn::Error {
    let what = match item {
        Item::Const(_) => "a const item",
        Item::Enum(_) => "an enum",
        Item::ExternCrate(_) => "an `extern crate`",
        Item::ForeignMod(_) => "an `extern` block",
        Item::Impl(_) => "an impl block; put it on the methods you want spans for",
        Item::Macro(_) => "a macro invocation",
        Item::Mod(_) => "a module",
        Item::Static(_) => "a static",
        Item::Struct(_) => "a struct",
        Item::Trait(_) => "a trait; put it on the methods that have a body",
        Item::TraitAlias(_) => "a trait alias",
        Item::Type(_) => "a type alias",
        Item::Union(_) => "a union",
        Item::Use(_) => "a `use` declaration",
        _ => "this item",
    };
    let span = first_token_span(item);
    syn::Error::new(
        span,
        format!("`#[kernel_span]` goes on a function or method, not on {what}"),
    )
}

/// The span of the item's keyword (after attributes and visibility).
fn first_token_span(item: &Item) -> proc_macro2::Span {
    use syn::spanned::Spanned as _;
    match item {
        Item::Const(i) => i.const_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Mod(i) => i.mod_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Struct(i) => i.struct_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Use(i) => i.use_token.span,
        Item::ForeignMod(i) => i.abi.extern_token.span,
        Item::ExternCrate(i) => i.extern_token.span,
        Item::Macro(i) => i.mac.path.span(),
        other => other.span(),
    }
}

fn check_signature(sig: &Signature) -> syn::Result<()> {
    if let Some(c) = &sig.constness {
        return Err(syn::Error::new(
            c.span,
            "`#[kernel_span]` cannot instrument a `const fn`: spans start at run time; remove `const` or the attribute",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new(
            abi.extern_token.span,
            "`#[kernel_span]` cannot instrument an `extern` function (a panic would unwind across the FFI boundary); instrument a Rust function it calls",
        ));
    }
    Ok(())
}

impl Func {
    pub(crate) fn shape(&self) -> Shape {
        if self.item.sig.asyncness.is_some() {
            Shape::Async
        } else if tail_future(&self.item.block).is_some() {
            Shape::Future
        } else {
            Shape::Sync
        }
    }

    /// The type the body produces: the declared return type, or the
    /// `Output = T` of a returned future.
    pub(crate) fn output(&self) -> Option<Type> {
        let declared = match &self.item.sig.output {
            syn::ReturnType::Default => return None,
            syn::ReturnType::Type(_, ty) => (**ty).clone(),
        };
        match self.shape() {
            Shape::Sync | Shape::Async => Some(declared),
            Shape::Future => future_output(&declared),
        }
    }
}

/// The last expression of a block when it is `async {..}` or `Box::pin(async {..})`.
pub(crate) fn tail_future(block: &Block) -> Option<&Expr> {
    let Some(Stmt::Expr(expr, None)) = block.stmts.last() else {
        return None;
    };
    match expr {
        Expr::Async(_) => Some(expr),
        Expr::Call(call) => {
            let Expr::Path(p) = &*call.func else {
                return None;
            };
            let segs: Vec<String> = p
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            let is_box_pin =
                segs.len() >= 2 && segs[segs.len() - 2] == "Box" && segs[segs.len() - 1] == "pin";
            (is_box_pin
                && call.args.len() == 1
                && matches!(call.args.first(), Some(Expr::Async(_))))
            .then_some(expr)
        }
        _ => None,
    }
}

/// Finds `Output = T` anywhere in a future's type (`impl Future<Output = T>`,
/// `Pin<Box<dyn Future<Output = T> + Send>>`).
fn future_output(ty: &Type) -> Option<Type> {
    match ty {
        Type::Path(p) => p.path.segments.iter().find_map(|seg| match &seg.arguments {
            syn::PathArguments::AngleBracketed(args) => {
                args.args.iter().find_map(|arg| match arg {
                    syn::GenericArgument::AssocType(a) if a.ident == "Output" => Some(a.ty.clone()),
                    syn::GenericArgument::Type(t) => future_output(t),
                    _ => None,
                })
            }
            _ => None,
        }),
        Type::ImplTrait(t) => bounds_output(t.bounds.iter()),
        Type::TraitObject(t) => bounds_output(t.bounds.iter()),
        Type::Paren(t) => future_output(&t.elem),
        Type::Group(t) => future_output(&t.elem),
        _ => None,
    }
}

fn bounds_output<'a>(mut bounds: impl Iterator<Item = &'a syn::TypeParamBound>) -> Option<Type> {
    bounds.find_map(|b| match b {
        syn::TypeParamBound::Trait(t) => {
            let seg = t.path.segments.last()?;
            if seg.ident != "Future" {
                return None;
            }
            match &seg.arguments {
                syn::PathArguments::AngleBracketed(args) => {
                    args.args.iter().find_map(|arg| match arg {
                        syn::GenericArgument::AssocType(a) if a.ident == "Output" => {
                            Some(a.ty.clone())
                        }
                        _ => None,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    })
}

/// Whether a type is spelled as a `Result` (last path segment `Result`:
/// `Result<T, E>`, `io::Result<T>`, `std::result::Result<T, E>`).
pub(crate) fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Result" && !s.arguments.is_empty()),
        Type::Paren(t) => is_result(&t.elem),
        Type::Group(t) => is_result(&t.elem),
        _ => false,
    }
}

/// `impl Trait` → `_`, so the type can annotate a `let` (where `impl Trait`
/// is not allowed) and still be inferred.
pub(crate) fn erase_impl_trait(ty: &Type) -> Type {
    let mut ty = ty.clone();
    erase(&mut ty);
    ty
}

fn erase(ty: &mut Type) {
    match ty {
        Type::ImplTrait(_) => {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: Default::default(),
            })
        }
        Type::Path(p) => {
            if let Some(q) = &mut p.qself {
                erase(&mut q.ty);
            }
            for seg in &mut p.path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &mut seg.arguments {
                    for arg in &mut args.args {
                        if let syn::GenericArgument::Type(t) = arg {
                            erase(t);
                        }
                    }
                }
            }
        }
        Type::Reference(r) => erase(&mut r.elem),
        Type::Ptr(r) => erase(&mut r.elem),
        Type::Slice(s) => erase(&mut s.elem),
        Type::Array(a) => erase(&mut a.elem),
        Type::Paren(p) => erase(&mut p.elem),
        Type::Group(g) => erase(&mut g.elem),
        Type::Tuple(t) => t.elems.iter_mut().for_each(erase),
        _ => {}
    }
}

impl ToTokens for Func {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.item.to_tokens(tokens);
    }
}
