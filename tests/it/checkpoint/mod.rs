//! Checkpoints: bit-exact round trips, choosing the newest complete checkpoint past broken
//! ones, every error kind, pruning, and a writer killed with SIGKILL mid-write.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dsrsq::model::Config;
use dsrsq::train::checkpoint::{
    check_compatible, latest, load, prune, save, scan_latest, sidecar_path, tensors_path, verify,
    Checkpoint, CheckpointError, Sidecar, TensorInfo, CHECKPOINT_FORMAT, LATEST_POINTER,
};
use dsrsq::train::TEMP_SUFFIX;
use dsrsq::Tensor;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("dsrsq-ckpt-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn sidecar(step: u64, params: &[(String, Tensor)]) -> Sidecar {
    Sidecar {
        format: CHECKPOINT_FORMAT,
        config: Config::preset("tiny").unwrap(),
        step,
        data_position: step * 8 + 3,
        seed: 0xdead_beef_cafe_f00d,
        adam_step: step as u32,
        tensors: TensorInfo::list(params),
        metrics: serde_json::json!({"loss": 2.5, "lr": 1e-4, "step": step}),
        commit: Some("062a8c3".into()),
    }
}

/// Values that catch lossy encodings: signed zero, subnormals, infinities, NaN payloads.
fn tricky(n: usize, salt: u32) -> Vec<f32> {
    let special = [
        -0.0,
        f32::MIN_POSITIVE / 3.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_1234),
        f32::MAX,
        0.1,
    ];
    (0..n)
        .map(|i| match special.get(i) {
            Some(&v) => v,
            None => i as f32 * 0.37 - salt as f32,
        })
        .collect()
}

fn tensors(shapes: &[(&str, &[usize])], salt: u32) -> Vec<(String, Tensor)> {
    shapes
        .iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n = shape.iter().product();
            let t = Tensor::new(tricky(n, salt + k as u32), shape).unwrap();
            (name.to_string(), t)
        })
        .collect()
}

const SHAPES: &[(&str, &[usize])] = &[
    ("embed", &[50, 16]),
    ("h0.attn.wq", &[16, 16]),
    ("h0.ln.gamma", &[16]),
    ("head.bias", &[1]),
];

fn checkpoint(step: u64) -> Checkpoint {
    let params = tensors(SHAPES, step as u32);
    Checkpoint {
        sidecar: sidecar(step, &params),
        adam_m: tensors(SHAPES, 1000 + step as u32),
        adam_v: tensors(SHAPES, 2000 + step as u32),
        params,
    }
}

fn assert_bit_exact(a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        assert_eq!(ta.shape, tb.shape, "{na}");
        let bits = |t: &Tensor| t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(ta), bits(tb), "{na}");
    }
}

fn assert_same(a: &Checkpoint, b: &Checkpoint) {
    assert_eq!(a.sidecar, b.sidecar);
    assert_bit_exact(&a.params, &b.params);
    assert_bit_exact(&a.adam_m, &b.adam_m);
    assert_bit_exact(&a.adam_v, &b.adam_v);
}

#[test]
fn round_trip_is_bit_exact() {
    let tmp = TempDir::new("roundtrip");
    let ck = checkpoint(7);
    let path = save(tmp.path(), &ck).unwrap();
    assert_eq!(path, tmp.path().join("step-00000007.safetensors"));
    assert!(tmp.path().join("step-00000007.json").exists());
    assert_same(&ck, &load(&path).unwrap());
    // Either file of the pair names the checkpoint.
    assert_same(&ck, &load(&sidecar_path(tmp.path(), 7)).unwrap());
    assert_eq!(verify(&path).unwrap(), ck.sidecar);

    let pointer: serde_json::Value =
        serde_json::from_slice(&fs::read(tmp.path().join(LATEST_POINTER)).unwrap()).unwrap();
    assert_eq!(pointer["step"], 7);
    assert_eq!(pointer["safetensors"], "step-00000007.safetensors");
    let leftovers = temp_files(tmp.path());
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn file_is_standard_safetensors() {
    let tmp = TempDir::new("standard");
    let ck = checkpoint(1);
    let bytes = fs::read(save(tmp.path(), &ck).unwrap()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), 3 * SHAPES.len());
    let wq = st.tensor("adam_v/h0.attn.wq").unwrap();
    assert_eq!(wq.dtype(), safetensors::Dtype::F32);
    assert_eq!(wq.shape(), &[16, 16]);
    let first = f32::from_le_bytes(wq.data()[..4].try_into().unwrap());
    assert_eq!(first.to_bits(), ck.adam_v[1].1.data[0].to_bits());
}

#[test]
fn weights_only_round_trip() {
    let tmp = TempDir::new("weights");
    let mut ck = checkpoint(3);
    ck.adam_m.clear();
    ck.adam_v.clear();
    let back = load(&save(tmp.path(), &ck).unwrap()).unwrap();
    assert_same(&ck, &back);
}

#[test]
fn resaving_a_step_replaces_it() {
    let tmp = TempDir::new("resave");
    save(tmp.path(), &checkpoint(4)).unwrap();
    let mut ck = checkpoint(4);
    ck.sidecar.data_position = 999;
    ck.params[0].1.data[5] = 42.0;
    let back = load(&save(tmp.path(), &ck).unwrap()).unwrap();
    assert_same(&ck, &back);
}

#[test]
fn save_rejects_inconsistent_checkpoints() {
    let tmp = TempDir::new("inconsistent");
    let mut short = checkpoint(1);
    short.params[1].1.data.pop();
    short.adam_m[1].1.data.pop();
    short.adam_v[1].1.data.pop();
    short.sidecar.tensors = TensorInfo::list(&short.params);
    let err = save(tmp.path(), &short).unwrap_err().to_string();
    assert!(
        err.contains("h0.attn.wq") && err.contains("255 values"),
        "{err}"
    );

    let mut stale = checkpoint(1);
    stale.sidecar.tensors.pop();
    let err = save(tmp.path(), &stale).unwrap_err().to_string();
    assert!(err.contains("sidecar.tensors"), "{err}");

    let mut one_moment = checkpoint(1);
    one_moment.adam_v.clear();
    assert!(save(tmp.path(), &one_moment).is_err());
    assert_eq!(latest(tmp.path()).unwrap(), None, "nothing was written");
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|l| {
            l.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(TEMP_SUFFIX))
                .collect()
        })
        .unwrap_or_default()
}

fn flip_byte(path: &Path, from_end: usize) {
    let mut bytes = fs::read(path).unwrap();
    let i = bytes.len() - from_end;
    bytes[i] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn latest_skips_broken_pairs_and_temp_files() {
    let tmp = TempDir::new("latest");
    let dir = tmp.path();
    assert_eq!(latest(dir).unwrap(), None);
    assert_eq!(latest(&dir.join("not-yet")).unwrap(), None);
    for step in [1, 2, 10, 11, 12] {
        save(dir, &checkpoint(step)).unwrap();
    }
    // 12: truncated data; 11: one flipped bit; 10: garbage sidecar.
    let st12 = tensors_path(dir, 12);
    let len = fs::metadata(&st12).unwrap().len();
    fs::File::options()
        .write(true)
        .open(&st12)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    flip_byte(&tensors_path(dir, 11), 10);
    fs::write(sidecar_path(dir, 10), b"{\"format\": 1, \"step\": ").unwrap();
    // A crashed writer's leftovers: temp files and an orphan safetensors file.
    fs::write(dir.join("step-00000013.safetensors.4242.tmp"), b"partial").unwrap();
    fs::write(dir.join("step-00000013.json.4242.tmp"), b"{}").unwrap();
    fs::copy(tensors_path(dir, 2), tensors_path(dir, 14)).unwrap();
    fs::write(dir.join("notes.json"), b"not a checkpoint").unwrap();

    let found = scan_latest(dir).unwrap();
    assert_eq!(found.path, Some(tensors_path(dir, 2)));
    let reasons: Vec<String> = found.skipped.iter().map(|e| e.to_string()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(matches!(
        found.skipped[0],
        CheckpointError::Truncated { .. }
    ));
    assert!(matches!(found.skipped[1], CheckpointError::Checksum { .. }));
    assert!(matches!(found.skipped[2], CheckpointError::Sidecar { .. }));
    assert!(
        reasons[0].contains("step-00000012.safetensors"),
        "{}",
        reasons[0]
    );
    assert_same(&checkpoint(2), &load(&found.path.unwrap()).unwrap());
}

#[test]
fn corrupt_checksum_is_an_error() {
    let tmp = TempDir::new("checksum");
    let path = save(tmp.path(), &checkpoint(5)).unwrap();
    flip_byte(&path, 1);
    let err = load(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Checksum { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("checksum mismatch") && text.contains("step-00000005.safetensors"));
    assert!(matches!(
        verify(&path),
        Err(CheckpointError::Checksum { .. })
    ));
}

#[test]
fn truncated_and_missing_files_are_errors() {
    let tmp = TempDir::new("truncated");
    let path = save(tmp.path(), &checkpoint(6)).unwrap();
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
    let err = load(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Truncated { .. }), "{err}");
    fs::remove_file(&path).unwrap();
    let err = load(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
    fs::remove_file(sidecar_path(tmp.path(), 6)).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("step-00000006.json"), "{err}");
    assert!(load(&tmp.path().join("step-00000006.bin")).is_err());
}

fn edit_sidecar(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn sidecar_errors() {
    let tmp = TempDir::new("sidecar");
    let dir = tmp.path();
    save(dir, &checkpoint(8)).unwrap();
    let json = sidecar_path(dir, 8);
    edit_sidecar(&json, |v| v["format"] = 2.into());
    let err = load(&json).unwrap_err();
    assert!(
        matches!(err, CheckpointError::Format { found: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("format 2"), "{err}");

    edit_sidecar(&json, |v| {
        v["format"] = 1.into();
        v["surprise"] = true.into();
    });
    let err = load(&json).unwrap_err();
    assert!(matches!(err, CheckpointError::Sidecar { .. }), "{err}");
    assert!(err.to_string().contains("surprise"), "{err}");

    edit_sidecar(&json, |v| {
        v.as_object_mut().unwrap().remove("surprise");
        v["safetensors"]["file"] = "step-00000009.safetensors".into();
    });
    let err = load(&json).unwrap_err().to_string();
    assert!(err.contains("step-00000009.safetensors"), "{err}");

    fs::write(&json, b"[1, 2").unwrap();
    let err = load(&json).unwrap_err();
    assert!(matches!(err, CheckpointError::Sidecar { .. }), "{err}");
}

#[test]
fn sidecar_tensor_list_must_match_the_file() {
    let tmp = TempDir::new("listing");
    let dir = tmp.path();
    save(dir, &checkpoint(9)).unwrap();
    let json = sidecar_path(dir, 9);
    edit_sidecar(&json, |v| {
        v["tensors"][1]["shape"] = serde_json::json!([8, 32])
    });
    let err = load(&json).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "tensor `param/h0.attn.wq`: checkpoint has [16, 16], this config expects [8, 32]"
        ),
        "{err}"
    );
    edit_sidecar(&json, |v| {
        v["tensors"][1]["shape"] = serde_json::json!([16, 16]);
        v["tensors"].as_array_mut().unwrap().pop();
    });
    let err = load(&json).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Extra { name, .. } if name == "adam_m/head.bias"),
        "{err}"
    );
}

#[test]
fn check_compatible_names_the_tensor_and_both_shapes() {
    let mut ck = checkpoint(1);
    let mut expected = TensorInfo::list(&ck.params);
    check_compatible(&expected, &ck).unwrap();
    expected.reverse();
    check_compatible(&expected, &ck).unwrap();

    ck.params[1].1 = Tensor::zeros(&[64, 64]);
    let mut want = TensorInfo::list(&ck.params);
    want[1].shape = vec![128, 128];
    let err = check_compatible(&want, &ck).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint step 1: tensor `h0.attn.wq`: checkpoint has [64, 64], this config expects [128, 128]"
    );

    want[1].shape = vec![64, 64];
    want.push(TensorInfo {
        name: "h1.attn.wq".into(),
        shape: vec![64, 64],
    });
    let err = check_compatible(&want, &ck).unwrap_err();
    assert!(matches!(&err, CheckpointError::Missing { name, .. } if name == "h1.attn.wq"));
    assert!(err.to_string().contains("`h1.attn.wq` is missing"), "{err}");

    want.pop();
    want.remove(0);
    let err = check_compatible(&want, &ck).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Extra { name, .. } if name == "embed"),
        "{err}"
    );
}

#[test]
fn prune_keeps_the_newest() {
    let tmp = TempDir::new("prune");
    let dir = tmp.path();
    for step in 1..=5 {
        save(dir, &checkpoint(step)).unwrap();
    }
    fs::write(dir.join("step-00000002.safetensors.77.tmp"), b"stale").unwrap();
    fs::write(dir.join("step-00000009.safetensors.77.tmp"), b"in progress").unwrap();
    // 5 has lost its data, so it does not count as kept.
    fs::remove_file(tensors_path(dir, 5)).unwrap();
    assert!(prune(dir, 0).is_err());
    prune(dir, 2).unwrap();
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "latest.json",
            "step-00000003.json",
            "step-00000003.safetensors",
            "step-00000004.json",
            "step-00000004.safetensors",
            "step-00000005.json",
            "step-00000009.safetensors.77.tmp",
        ]
    );
    assert_eq!(latest(dir).unwrap(), Some(tensors_path(dir, 4)));
    prune(dir, 10).unwrap();
    assert_eq!(
        fs::read_dir(dir).unwrap().count(),
        7,
        "fewer than keep: nothing goes"
    );
}

mod sigkill;
