// Checks: inner attributes of the body stay at the top of the generated body,
// other attributes and doc comments are kept, `unsafe fn` and `pub(crate)`
// visibility survive, and items declared inside the body still work.
#![deny(warnings)]
#![deny(unused_variables)]

use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

mod inner {
    use agent_kernel_otel::kernel_span;

    /// Documented and `#[inline]`.
    #[inline]
    #[kernel_span(name = "demo.inner.visible")]
    pub(crate) fn visible() -> u8 {
        #![allow(clippy::let_and_return)]
        fn helper() -> u8 {
            4
        }
        let x = helper();
        x
    }
}

#[kernel_span(name = "demo.unsafe")]
unsafe fn raw(p: *const u8) -> u8 {
    unsafe { *p }
}

fn main() {
    let cap = Capture::install_global();
    assert_eq!(inner::visible(), 4);
    let v = 9u8;
    assert_eq!(unsafe { raw(&v) }, 9);
    if cfg!(feature = "otel") {
        cap.span("demo.inner.visible");
        cap.span("demo.unsafe");
    }
}
