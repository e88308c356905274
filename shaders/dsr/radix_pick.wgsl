// Radix select, digit choice (one thread; 256 bins): walking the digits from the top, the
// threshold's digit is the first whose count reaches the number of blocks still to take; the
// blocks in higher bins are all kept, so they leave the count. After the 4th pass state[6] is
// the key T of the last kept block and state[7] how many blocks with key T to keep (lowest
// indices first). Nothing to take (state[7] = 0) leaves the state alone.
#include "dsr_radix.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hist: array<u32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;

@compute @workgroup_size(1)
fn main() {
    var rem = state[7];
    if (rem == 0u) { return; }
    var digit = 0u;
    for (var k = 0u; k < 256u; k++) {
        let d = 255u - k;
        let h = hist[p.pass_ * 256u + d];
        if (h >= rem) {
            digit = d;
            break;
        }
        rem -= h;
    }
    state[6] |= digit << (24u - 8u * p.pass_);
    state[7] = rem;
}
