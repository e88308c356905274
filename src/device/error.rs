use thiserror::Error;

/// Everything that can go wrong between the host and a wgpu device.
#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("no wgpu adapter found (backends tried: {backends})")]
    NoAdapter { backends: String },
    #[error("no adapter matches WGPU_ADAPTER_NAME={wanted:?}; adapters found: {available}")]
    AdapterNotFound { wanted: String, available: String },
    #[error("adapter {adapter:?} cannot provide limit {limit}: needs {needed}, has {has}")]
    LimitTooLow {
        adapter: String,
        limit: &'static str,
        needed: u64,
        has: u64,
    },
    #[error("requesting a device from adapter {adapter:?} failed: {source}")]
    RequestDevice {
        adapter: String,
        #[source]
        source: wgpu::RequestDeviceError,
    },
    #[error(
        "{what} needs {bytes} bytes but the device allows at most {max} bytes per storage binding"
    )]
    TooLarge { what: String, bytes: u64, max: u64 },
    #[error("shape mismatch in {op}: {detail}")]
    Shape { op: &'static str, detail: String },
    #[error("wgpu validation error in {op}: {message}")]
    Validation { op: String, message: String },
    #[error("device out of memory in {op}: {message}")]
    OutOfMemory { op: String, message: String },
    #[error("reading back a buffer failed in {op}: {message}")]
    Readback { op: String, message: String },
    #[error("shader {kernel} has no defaults for define {define}")]
    MissingDefine {
        kernel: &'static str,
        define: String,
    },
    #[error("shader {kernel} includes `{include}`, which is not in shaders/common/")]
    MissingInclude {
        kernel: &'static str,
        include: String,
    },
}

pub type Result<T> = std::result::Result<T, DeviceError>;
