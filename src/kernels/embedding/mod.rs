//! Token embedding lookup and its backward (scatter-add into the embedding table).
//!
//! Shape legend: `weight, dweight: [vocab, dim]`, `ids: [T]` (host `u32`), `out, dy: [T, dim]`.
//!
//! Choices:
//! - Ids live on the host (the tokenizer produced them), so every launcher checks them there: an
//!   id ≥ vocab is a `DeviceError::Shape` naming the position and the id, before anything reads
//!   out of bounds. The forward shader also guards the read, as a second line of defence.
//! - The backward is deterministic without float atomics (WGSL has none): the host sorts the
//!   positions by id (stable, so positions stay ascending within an id) and cuts the order into
//!   one segment per distinct id. One GPU thread per (segment, column) adds its segment's rows in
//!   that fixed order and writes the id's row; rows of ids that never occur stay zero from
//!   allocation. The CPU adds in the same order, so both give the same sums.

pub mod cpu;
pub mod gpu;

use crate::device::{DeviceError, KernelSpec};
use crate::kernel_spec;

pub const WG: u32 = 256;

pub static FORWARD: KernelSpec = kernel_spec!(
    "embedding/forward",
    "embedding/forward.wgsl",
    "main",
    crate::kernels::embedding::gpu::FwdParams,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BACKWARD: KernelSpec = kernel_spec!(
    "embedding/backward",
    "embedding/backward.wgsl",
    "main",
    crate::kernels::embedding::gpu::BwdParams,
    [Read, Read, Read, Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&FORWARD, &BACKWARD];

/// Errors on the first id that is not below `vocab`, naming its position.
pub fn check_ids(op: &'static str, ids: &[u32], vocab: usize) -> Result<(), DeviceError> {
    match ids.iter().position(|&id| id as usize >= vocab) {
        None => Ok(()),
        Some(t) => Err(DeviceError::Shape {
            op,
            detail: format!(
                "token id {} at position {t} is out of range for vocab {vocab}",
                ids[t]
            ),
        }),
    }
}

/// Positions grouped by id: `order[offsets[k]..offsets[k + 1]]` are the positions (ascending)
/// whose id is `ids[k]`; `ids` is sorted and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    pub order: Vec<u32>,
    pub ids: Vec<u32>,
    pub offsets: Vec<u32>,
}

impl Segments {
    pub fn new(ids: &[u32]) -> Self {
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        // Stable: equal ids keep ascending positions, which fixes the summation order.
        order.sort_by_key(|&t| ids[t as usize]);
        let mut seg_ids = Vec::new();
        let mut offsets = Vec::new();
        for (j, &t) in order.iter().enumerate() {
            let id = ids[t as usize];
            if seg_ids.last() != Some(&id) {
                seg_ids.push(id);
                offsets.push(j as u32);
            }
        }
        offsets.push(order.len() as u32);
        Self {
            order,
            ids: seg_ids,
            offsets,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The positions of segment `k`, in summation order.
    pub fn positions(&self, k: usize) -> &[u32] {
        &self.order[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }
}
