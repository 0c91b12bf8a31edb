//! `max_result_bytes` (issue 19): a driver wrapped in `CappedDriver` hands
//! the kernel a result cut to its cap, and the frame says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use agent_kernel::driver::CappedDriver;
use agent_kernel::*;
use common::*;

async fn table_with_cap(cap: usize) -> Frame {
    let f = fixture();
    f.kernel
        .register_driver(CappedDriver::new(billing_driver(Arc::clone(&f.data)), cap));
    let p = reader();
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(LIST, "list invoices"), &p, "")
        .unwrap();
    f.kernel
        .invoke(&token, &p, list_args(), ResponseMode::Table)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_result_over_the_cap_is_cut_and_the_frame_says_so() {
    let frame = table_with_cap(2_000).await;
    let warning = frame
        .warnings
        .iter()
        .find(|w| w.starts_with("Result cut to max_result_bytes=2000 "))
        .unwrap_or_else(|| panic!("no cut warning in {:?}", frame.warnings));
    assert!(warning.contains("bytes of text"), "{warning}");
    let handle = frame.handle.expect("a handle");
    assert!(handle.total_rows < 30, "{} rows kept", handle.total_rows);
    assert!(handle.total_rows > 0);
}

#[tokio::test]
async fn a_result_within_the_cap_is_untouched() {
    let frame = table_with_cap(10_000_000).await;
    assert!(
        !frame.warnings.iter().any(|w| w.starts_with("Result cut")),
        "{:?}",
        frame.warnings
    );
    assert_eq!(frame.handle.expect("a handle").total_rows, 30);
}
