//! trybuild UI suites: `ui/pass` cases compile and run (with the `otel`
//! feature each asserts the spans it produced); `ui/fail` cases fail with the
//! `.stderr` beside them, the same with and without the feature
//! (`cargo test -p agent-kernel-tests` and `... --features otel`).
//! `TRYBUILD=overwrite` regenerates the expectations.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
