// Writes the kept positions in original order: context token t of a kept block b goes to
// pos[b]·block + (t − b·block) (pos = exclusive prefix sum of the kept flags; only the last
// block can be short, so whole blocks before it make the offset), then question token q0 + j
// goes after the kept context. Thread 0 also writes the info words the host reads back:
// [count, kept context, c bits, budget B, kept blocks K, max bits, ln z bits, 0].
struct Params { n_ctx: u32, block: u32, nb: u32, q0: u32, nq: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sel: array<u32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> idx: array<u32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = (wid.y * nwg.x + wid.x) * WG + lid;
    if (t >= p.n_ctx + p.nq) { return; }
    let last = p.nb - 1u;
    let kept = pos[last] * p.block + sel[last] * (p.n_ctx - last * p.block);
    if (t < p.n_ctx) {
        let b = t / p.block;
        if (sel[b] == 1u) {
            idx[pos[b] * p.block + (t - b * p.block)] = t;
        }
    } else {
        let j = t - p.n_ctx;
        idx[kept + j] = p.q0 + j;
    }
    if (t == 0u) {
        info[0] = kept + p.nq;
        info[1] = kept;
        info[2] = state[2];
        info[3] = state[3];
        info[4] = state[4];
        info[5] = state[0];
        info[6] = state[1];
        info[7] = 0u;
    }
}
