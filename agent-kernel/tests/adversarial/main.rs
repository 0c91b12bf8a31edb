//! The adversarial suite: one test per attack on the kernel's access control,
//! each named after the attack and written to fail on a kernel that lets it
//! through. Callers and tools are untrusted: wrong principals, forged or
//! widened constraints, revoked tokens, replayed handles, budgets pushed past
//! their end, hostile strings where ids and arguments belong.
//!
//! One module per surface; `docs/security.md` names the test behind each
//! promise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod budgets;
mod expand;
mod grants_and_tokens;
mod handlers;
