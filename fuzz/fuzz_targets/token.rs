//! Fuzz target `token`: see `agent_kernel_fuzz` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent_kernel_fuzz::kernel_checks::token(data);
});
