//! The uniform at binding 0 of every kernel: a `#[repr(C)]` Rust struct whose layout must equal
//! the WGSL `struct Params` it fills. [`gpu_params!`](crate::gpu_params) declares the Rust side
//! and records each field's name, offset and type, so a test can compare it with naga's layout
//! of the WGSL struct (`tests/it/shaders_validate.rs`) and `dispatch` can refuse a kernel
//! launched with another struct than the one its spec names.

/// One field of a params struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamField {
    pub name: &'static str,
    pub offset: usize,
    /// The Rust type as written (`u32`, `f32`, `[u32; 3]`, ...).
    pub ty: &'static str,
}

/// A params struct's Rust layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamsLayout {
    /// `std::any::type_name` of the struct.
    pub type_name: &'static str,
    pub size: usize,
    pub fields: &'static [ParamField],
}

/// A struct that fills a kernel's uniform; implemented by [`gpu_params!`](crate::gpu_params).
pub trait GpuParams: bytemuck::Pod {
    const LAYOUT: ParamsLayout;
}

/// Declares a kernel params struct: `#[repr(C)]`, `Pod`, and its [`ParamsLayout`]. Field names
/// are the WGSL member names; fields starting with `_` are padding.
#[macro_export]
macro_rules! gpu_params {
    ($(#[$m:meta])* $vis:vis struct $name:ident {
        $($(#[$fm:meta])* $fvis:vis $f:ident : $t:ty),* $(,)?
    }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name { $($(#[$fm])* $fvis $f: $t),* }

        impl $crate::device::GpuParams for $name {
            const LAYOUT: $crate::device::ParamsLayout = $crate::device::ParamsLayout {
                type_name: concat!(module_path!(), "::", stringify!($name)),
                size: ::std::mem::size_of::<$name>(),
                fields: &[$($crate::device::ParamField {
                    name: stringify!($f),
                    offset: ::std::mem::offset_of!($name, $f),
                    ty: stringify!($t),
                }),*],
            };
        }
    };
}
