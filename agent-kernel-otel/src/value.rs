//! Attribute values: what an `attrs(...)` expression or [`record`](crate::record)
//! may hand to a span.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

/// One span attribute value (and, for keys used as metric labels, one label
/// value).
///
/// `Static` strings are recorded without allocating; borrowed strings are
/// copied once. Implement [`ToAttrValue`] for your own closed enums and return
/// `Static(self.as_str())` to keep them allocation-free.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue<'a> {
    /// A string that lives for the whole program.
    Static(&'static str),
    /// A borrowed string, copied when recorded.
    Borrowed(&'a str),
    /// An owned string, moved into the attribute.
    String(String),
    /// A reference-counted string, recorded by cloning the `Arc` (no copy):
    /// for ids that are recorded on every call, keep them in an `Arc<str>`
    /// and hand out `Shared(Arc::clone(&id))`.
    Shared(Arc<str>),
    /// A boolean.
    Bool(bool),
    /// A signed integer (unsigned values above `i64::MAX` are recorded as strings).
    I64(i64),
    /// A floating-point number.
    F64(f64),
}

/// Converts a value into an [`AttrValue`]; `None` means "leave the attribute
/// out" (as for an `Option` that is `None`).
///
/// Implemented for strings, integers, floats, booleans, `Option<T>`, and
/// references, `Box`, `Rc`, `Arc` and `Cow` of those. There is deliberately no
/// blanket implementation over `Display` or `Debug`: an argument is recorded
/// only when you say how.
pub trait ToAttrValue {
    /// The value to record, or `None` to record nothing.
    fn to_attr_value(&self) -> Option<AttrValue<'_>>;
}

impl ToAttrValue for AttrValue<'_> {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        Some(match self {
            AttrValue::Static(s) => AttrValue::Static(s),
            AttrValue::Borrowed(s) => AttrValue::Borrowed(s),
            AttrValue::String(s) => AttrValue::Borrowed(s),
            AttrValue::Shared(s) => AttrValue::Shared(Arc::clone(s)),
            AttrValue::Bool(b) => AttrValue::Bool(*b),
            AttrValue::I64(i) => AttrValue::I64(*i),
            AttrValue::F64(f) => AttrValue::F64(*f),
        })
    }
}

impl ToAttrValue for str {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        Some(AttrValue::Borrowed(self))
    }
}

impl ToAttrValue for String {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        Some(AttrValue::Borrowed(self))
    }
}

impl ToAttrValue for Cow<'_, str> {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        Some(AttrValue::Borrowed(self))
    }
}

impl ToAttrValue for bool {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        Some(AttrValue::Bool(*self))
    }
}

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl ToAttrValue for $t {
            fn to_attr_value(&self) -> Option<AttrValue<'_>> {
                Some(AttrValue::I64(i64::from(*self)))
            }
        }
    )*};
}
signed!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! wide {
    ($($t:ty),*) => {$(
        impl ToAttrValue for $t {
            fn to_attr_value(&self) -> Option<AttrValue<'_>> {
                Some(match i64::try_from(*self) {
                    Ok(v) => AttrValue::I64(v),
                    Err(_) => AttrValue::String(self.to_string()),
                })
            }
        }
    )*};
}
wide!(u64, usize, isize, i128, u128);

impl ToAttrValue for f64 {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        Some(AttrValue::F64(*self))
    }
}

impl ToAttrValue for f32 {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        Some(AttrValue::F64(f64::from(*self)))
    }
}

impl<T: ToAttrValue> ToAttrValue for Option<T> {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        self.as_ref().and_then(ToAttrValue::to_attr_value)
    }
}

impl<T: ToAttrValue + ?Sized> ToAttrValue for &T {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        (**self).to_attr_value()
    }
}

impl<T: ToAttrValue + ?Sized> ToAttrValue for &mut T {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        (**self).to_attr_value()
    }
}

impl<T: ToAttrValue + ?Sized> ToAttrValue for Box<T> {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        (**self).to_attr_value()
    }
}

impl<T: ToAttrValue + ?Sized> ToAttrValue for Rc<T> {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        (**self).to_attr_value()
    }
}

impl<T: ToAttrValue + ?Sized> ToAttrValue for Arc<T> {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        (**self).to_attr_value()
    }
}

#[cfg(feature = "otel")]
impl AttrValue<'_> {
    /// Into an OpenTelemetry value; strings are copied into a fresh buffer.
    pub(crate) fn into_otel(self) -> opentelemetry::Value {
        use opentelemetry::Value;
        match self {
            AttrValue::Static(s) => Value::from(s),
            AttrValue::Borrowed(s) => Value::from(s.to_owned()),
            AttrValue::String(s) => Value::from(s),
            AttrValue::Shared(s) => Value::from(s),
            AttrValue::Bool(b) => Value::Bool(b),
            AttrValue::I64(i) => Value::I64(i),
            AttrValue::F64(f) => Value::F64(f),
        }
    }

    /// Into an OpenTelemetry value whose clones are cheap (strings behind an
    /// `Arc<str>`), for values that also become metric labels.
    pub(crate) fn into_otel_shared(self) -> opentelemetry::Value {
        use opentelemetry::Value;
        match self {
            AttrValue::Borrowed(s) => Value::from(Arc::<str>::from(s)),
            AttrValue::String(s) => Value::from(Arc::<str>::from(s)),
            other => other.into_otel(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!("a".to_attr_value(), Some(AttrValue::Borrowed("a")));
        assert_eq!(
            String::from("b").to_attr_value(),
            Some(AttrValue::Borrowed("b"))
        );
        assert_eq!(7u32.to_attr_value(), Some(AttrValue::I64(7)));
        assert_eq!(
            u64::MAX.to_attr_value(),
            Some(AttrValue::String(u64::MAX.to_string()))
        );
        assert_eq!(None::<i32>.to_attr_value(), None);
        assert_eq!(Some(true).to_attr_value(), Some(AttrValue::Bool(true)));
        assert_eq!(
            Arc::<str>::from("c").to_attr_value(),
            Some(AttrValue::Borrowed("c"))
        );
        let shared: Arc<str> = Arc::from("d");
        let value = AttrValue::Shared(Arc::clone(&shared));
        match value.to_attr_value() {
            Some(AttrValue::Shared(s)) => assert!(Arc::ptr_eq(&s, &shared)),
            other => panic!("expected the same Arc back, got {other:?}"),
        }
    }

    #[cfg(feature = "otel")]
    #[test]
    fn shared_strings_are_not_copied() {
        let shared: Arc<str> = Arc::from("billing.list_invoices");
        let before = Arc::strong_count(&shared);
        let value = AttrValue::Shared(Arc::clone(&shared)).into_otel();
        assert_eq!(value.as_str(), "billing.list_invoices");
        assert_eq!(
            Arc::strong_count(&shared),
            before + 1,
            "the Arc is shared, not copied"
        );
    }
}
