//! The host tensor: the CPU backend's storage and the currency of up/downloads.

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

impl Tensor {
    /// Fails (rather than panicking later) when `data` does not fill `shape`.
    pub fn new(data: Vec<f32>, shape: &[usize]) -> Result<Self, crate::device::DeviceError> {
        let numel: usize = shape.iter().product();
        if data.len() != numel {
            return Err(crate::device::DeviceError::Shape {
                op: "Tensor::new",
                detail: format!(
                    "{} values for shape {shape:?} ({numel} elements)",
                    data.len()
                ),
            });
        }
        Ok(Self {
            data,
            shape: shape.to_vec(),
        })
    }
    pub fn zeros(shape: &[usize]) -> Self {
        Self {
            data: vec![0.0; shape.iter().product()],
            shape: shape.to_vec(),
        }
    }
    pub fn numel(&self) -> usize {
        self.data.len()
    }
}
