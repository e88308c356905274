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
    let common = dsrsq::device::wgsl_common::COMMON;
    let (shared, kernels): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|f| f.starts_with(root.join("common")));
    // Every shared file is in the table and included by some kernel.
    for f in &shared {
        let name = f.file_name().expect("name").to_string_lossy();
        assert!(
            common.iter().any(|(n, _)| *n == name),
            "shaders/common/{name} is not in device::wgsl_common::COMMON"
        );
        let line = format!("#include \"{name}\"");
        assert!(
            specs
                .iter()
                .any(|s| s.source.lines().any(|l| l.trim() == line)),
            "shaders/common/{name} is included by no kernel"
        );
    }
    assert_eq!(
        shared.len(),
        common.len(),
        "COMMON lists a file that is not there"
    );
    for f in kernels {
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

#[test]
fn an_unknown_include_is_an_error_naming_it() {
    let err = dsrsq::device::wgsl_common::expand("test/kernel", "#include \"nope.wgsl\"\n")
        .expect_err("unknown include");
    let text = err.to_string();
    assert!(
        text.contains("test/kernel") && text.contains("nope.wgsl"),
        "{text}"
    );
}

/// The scalar a Rust params field's type maps to in WGSL; `None` for padding arrays.
fn wgsl_scalar(rust_ty: &str) -> Option<naga::ScalarKind> {
    match rust_ty {
        "u32" => Some(naga::ScalarKind::Uint),
        "i32" => Some(naga::ScalarKind::Sint),
        "f32" => Some(naga::ScalarKind::Float),
        _ => None,
    }
}

/// Each kernel's Rust params struct (`KernelSpec::params`, declared with `gpu_params!`) has the
/// layout naga gives the WGSL struct at binding 0: the same named members at the same byte
/// offsets with the same scalar types (members starting with `_` are padding), and the same
/// size once rounded to the 16 bytes `dispatch` pads to.
#[test]
fn every_params_struct_matches_its_wgsl_layout() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for spec in dsrsq::kernels::all_specs() {
        let (src, _) = spec.resolved_source(&[]).expect("defines");
        let module = naga::front::wgsl::parse_str(&src).expect("parses");
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout");
        let uniform = module
            .global_variables
            .iter()
            .map(|(_, v)| v)
            .find(|v| {
                v.binding
                    .as_ref()
                    .is_some_and(|b| b.group == 0 && b.binding == 0)
            })
            .unwrap_or_else(|| panic!("{}: no binding 0", spec.file));
        let naga::TypeInner::Struct { members, span } = &module.types[uniform.ty].inner else {
            panic!("{}: binding 0 is not a struct", spec.file);
        };
        let rust = spec.params;
        let at = format!("{} vs {}", spec.file, rust.type_name);
        let round16 = |x: usize| x.div_ceil(16) * 16;
        if round16(rust.size) != round16(*span as usize) {
            problems.push(format!("{at}: size {} vs WGSL span {span}", rust.size));
        }
        let named = |n: &str| !n.starts_with('_');
        for m in members {
            let name = m.name.as_deref().unwrap_or("");
            if !named(name) {
                continue;
            }
            let Some(f) = rust.fields.iter().find(|f| f.name == name) else {
                problems.push(format!("{at}: WGSL member `{name}` has no Rust field"));
                continue;
            };
            if f.offset != m.offset as usize {
                problems.push(format!(
                    "{at}: `{name}` at byte {} in Rust, {} in WGSL",
                    f.offset, m.offset
                ));
            }
            let scalar = match module.types[m.ty].inner {
                naga::TypeInner::Scalar(s) => Some(s.kind),
                _ => None,
            };
            if wgsl_scalar(f.ty) != scalar {
                problems.push(format!(
                    "{at}: `{name}` is {} in Rust, {scalar:?} in WGSL",
                    f.ty
                ));
            }
        }
        for f in rust.fields.iter().filter(|f| named(f.name)) {
            if !members.iter().any(|m| m.name.as_deref() == Some(f.name)) {
                problems.push(format!(
                    "{at}: Rust field `{}` is not in the WGSL struct",
                    f.name
                ));
            }
        }
        checked += 1;
    }
    assert!(checked > 70, "checked {checked} kernels");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
