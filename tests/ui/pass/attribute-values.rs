// Checks: attribute values of many types: integers, floats, booleans, owned
// and borrowed strings, `Option` (left out when `None`), and a user enum
// implementing `ToAttrValue`; raw identifiers as keys and parameters.
#![deny(warnings)]
use agent_kernel_otel::{kernel_span, AttrValue, ToAttrValue};
use agent_kernel_tests::Capture;

enum SafetyClass {
    Read,
}

impl ToAttrValue for SafetyClass {
    fn to_attr_value(&self) -> Option<AttrValue<'_>> {
        Some(AttrValue::Static(match self {
            SafetyClass::Read => "read",
        }))
    }
}

#[kernel_span(
    name = "demo.values",
    attrs(n, ratio, flag, owned, session_id, driver_id, safety_class = class, r#type, big = u64::MAX)
)]
fn values(
    n: i32,
    ratio: f64,
    flag: bool,
    owned: String,
    session_id: Option<&str>,
    driver_id: Option<String>,
    class: SafetyClass,
    r#type: &str,
) -> usize {
    let _ = (n, ratio, flag, session_id, driver_id, class, r#type);
    owned.len()
}

fn main() {
    let cap = Capture::install_global();
    assert_eq!(values(-3, 0.5, true, "abc".into(), None, Some("http".into()), SafetyClass::Read, "t"), 3);
    if cfg!(feature = "otel") {
        let s = cap.span("demo.values");
        assert_eq!(s.attr("agent_kernel.n"), Some("-3"));
        assert_eq!(s.attr("agent_kernel.ratio"), Some("0.5"));
        assert_eq!(s.attr("agent_kernel.flag"), Some("true"));
        assert_eq!(s.attr("agent_kernel.owned"), Some("abc"));
        assert_eq!(s.attr("agent_kernel.session_id"), None);
        assert_eq!(s.attr("agent_kernel.driver_id"), Some("http"));
        assert_eq!(s.attr("agent_kernel.safety_class"), Some("read"));
        assert_eq!(s.attr("agent_kernel.type"), Some("t"));
        assert_eq!(s.attr("agent_kernel.big"), Some("18446744073709551615"));
    }
}
