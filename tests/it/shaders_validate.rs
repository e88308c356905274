//! Every `.wgsl` file under `shaders/` parses and validates with naga (no adapter needed), and
//! every file is launched by at least one registered kernel.

use std::path::{Path, PathBuf};

fn wgsl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read shaders dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            wgsl_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "wgsl") {
            out.push(p);
        }
    }
}

#[test]
fn every_registered_kernel_validates_with_naga() {
    let specs = dsrsq::kernels::all_specs();
    assert!(!specs.is_empty());
    for spec in specs {
        let (src, _) = spec.resolved_source(&[]).expect("defines");
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}: {}", spec.file, e.emit_to_string(&src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {:?}", spec.file, e));
        assert!(
            module.entry_points.iter().any(|ep| ep.name == spec.entry),
            "{} has no entry point {}",
            spec.file,
            spec.entry
        );
    }
}

#[test]
fn every_wgsl_file_is_registered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files = Vec::new();
    wgsl_files(&root, &mut files);
    assert!(!files.is_empty());
    let specs = dsrsq::kernels::all_specs();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .expect("under shaders/")
            .to_string_lossy()
            .replace('\\', "/");
        assert!(
            specs.iter().any(|s| s.file == rel),
            "{rel} is not launched by any registered kernel"
        );
    }
}
