//! agent-kernel: placeholder root, replaced by the kernel issue's work.
#![forbid(unsafe_code)]

pub mod firewall;
pub mod types;
