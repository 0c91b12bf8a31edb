//! Fuzz target `shapes`: see `agent_kernel_fuzz::kernel_checks::shapes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent_kernel_fuzz::kernel_checks::shapes(data);
});
