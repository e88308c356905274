//! A checkpoint writer killed with SIGKILL mid-write leaves the previous checkpoint loadable.

use super::*;

// --- SIGKILL mid-write -------------------------------------------------------------------------

const CHILD_ENV: &str = "DSRSQ_CKPT_KILL_DIR";
// The path libtest knows it by in the one test binary (`tests/it`).
const CHILD_TEST: &str = "checkpoint::sigkill::sigkill_child_writer";
/// 2.5M floats × (params + 2 moments) × 4 bytes = 30 MB per checkpoint: long enough to write
/// that a kill lands mid-write.
const BIG: [(&str, [usize; 2]); 2] = [("h0.mlp.w1", [1000, 1250]), ("h0.mlp.w2", [1250, 1000])];

fn big_tensors(step: u64, salt: u64) -> Vec<(String, Tensor)> {
    BIG.iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let base = (step * 7 + salt * 3 + k as u64) as f32;
            let data = (0..shape[0] * shape[1])
                .map(|i| base + (i % 4099) as f32 * 0.25)
                .collect();
            (name.to_string(), Tensor::new(data, shape).unwrap())
        })
        .collect()
}

fn big_checkpoint(step: u64) -> Checkpoint {
    let params = big_tensors(step, 0);
    Checkpoint {
        sidecar: sidecar(step, &params),
        adam_m: big_tensors(step, 1),
        adam_v: big_tensors(step, 2),
        params,
    }
}

/// Run only as the child of `sigkill_mid_write_leaves_a_loadable_checkpoint`: saves big
/// checkpoints (pruning as a training loop would) until it is killed.
#[test]
#[ignore = "child process of sigkill_mid_write_leaves_a_loadable_checkpoint"]
fn sigkill_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    for step in 1.. {
        save(&dir, &big_checkpoint(step)).unwrap();
        prune(&dir, 2).unwrap();
    }
}

/// Kills the child if the parent test fails first.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(child: &mut KillOnDrop, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done() {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("child writer exited ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Temp files of safetensors writes in progress, with their current lengths.
fn partial_tensor_temps(dir: &Path) -> Vec<(PathBuf, u64)> {
    temp_files(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".safetensors."))
        .filter_map(|p| fs::metadata(&p).ok().map(|m| (p, m.len())))
        .collect()
}

#[test]
fn sigkill_mid_write_leaves_a_loadable_checkpoint() {
    // Extra delays after the first partial write is seen, so kills also land later in a write,
    // between writes or during a prune; at least one must land mid-write.
    const DELAYS_MS: [u64; 4] = [0, 20, 60, 150];
    let mut mid_write = 0;
    for delay in DELAYS_MS {
        let tmp = TempDir::new("sigkill");
        let dir = tmp.path();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CHILD_TEST, "--ignored", "--nocapture"])
            .env(CHILD_ENV, dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        wait_for(&mut child, "the first checkpoint", || {
            sidecar_path(dir, 1).exists()
        });
        // Kill once a later checkpoint's data is partly written.
        wait_for(&mut child, "a later write", || {
            partial_tensor_temps(dir).iter().any(|(_, len)| *len > 0)
        });
        std::thread::sleep(Duration::from_millis(delay));
        child.0.kill().unwrap(); // SIGKILL on Unix
        child.0.wait().unwrap();

        let found = scan_latest(dir).unwrap();
        let path = found.path.expect("a complete checkpoint survives the kill");
        assert!(found.skipped.is_empty(), "{:?}", found.skipped);
        let ck = load(&path).unwrap();
        assert!(ck.sidecar.step >= 1);
        assert_same(&big_checkpoint(ck.sidecar.step), &ck);
        let full = fs::metadata(&path).unwrap().len();
        let left = partial_tensor_temps(dir);
        if left.iter().any(|(_, len)| *len < full) {
            mid_write += 1;
        }
        eprintln!(
            "killed {delay} ms in; latest complete is step {} ({full} bytes), temp files left: {left:?}",
            ck.sidecar.step
        );
    }
    assert!(
        mid_write >= 1,
        "no kill out of {} landed mid-way through writing a safetensors file",
        DELAYS_MS.len()
    );
}
