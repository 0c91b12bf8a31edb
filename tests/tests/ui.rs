//! trybuild UI suites: `ui/pass` cases compile and run (with the `otel`
//! feature each asserts the spans it produced); `ui/fail` cases fail with the
//! `.stderr` beside them, the same with and without the feature
//! (`cargo test -p agent-kernel-tests` and `... --features otel`).
//! `ui/fail-otel` cases fail only with the feature: what a constant holds
//! (a metric constant's labels, a constant name's type) is checked by the
//! `const` assertions of the generated code, and without `otel` the function
//! comes back unchanged and never reads the constant.
//! `TRYBUILD=overwrite` regenerates the expectations.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
    #[cfg(feature = "otel")]
    t.compile_fail("ui/fail-otel/*.rs");
}
