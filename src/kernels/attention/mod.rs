pub static SPECS: &[&crate::device::KernelSpec] = &[];
