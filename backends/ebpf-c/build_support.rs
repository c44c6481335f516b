// Build-script helpers shared by every backend that compiles the BPF C
// sources in this folder: one source of truth for the kernel side.
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

// `storm_abi!`: the numeric ABI of the BPF programs, shared with the Rust ones.
include!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../common/src/abi.rs"
));

/// The C text of `bpfstorm_abi.h` from `storm_abi!`'s list.
macro_rules! c_header {
    (
        map { $($map:ident = $map_value:literal $_map:tt)+ }
        update { $($update:ident = $update_value:literal $_update:tt)+ }
        ringbuf_bytes = $bytes:expr;
        lru_entries = $lru_entries:expr;
        wakeup_batch = $batch:expr;
        global_slot_bytes = $slot_bytes:expr;
        global_percpu_slots = $slots:expr;
    ) => {
        [
            "/* Generated at build time from common/src/abi.rs: edit that file. */".into(),
            "#ifndef BPFSTORM_ABI_H".into(),
            "#define BPFSTORM_ABI_H".into(),
            "/* Map kinds, by strategy name (bpfstorm_common::MapKind). */".into(),
            "enum storm_map_kind {".into(),
            $(format!("\tSTORM_MAP_{} = {},", stringify!($map), $map_value),)+
            "};".into(),
            "/* Update modes, by strategy name (bpfstorm_common::UpdateMode). */".into(),
            "enum storm_update_mode {".into(),
            $(format!("\tSTORM_UPDATE_{} = {},", stringify!($update), $update_value),)+
            "};".into(),
            format!("#define STORM_RINGBUF_BYTES ({})", stringify!($bytes)),
            format!("#define STORM_LRU_ENTRIES ({})", stringify!($lru_entries)),
            format!("#define STORM_WAKEUP_BATCH ({})", stringify!($batch)),
            format!("#define STORM_GLOBAL_SLOT_BYTES ({})", stringify!($slot_bytes)),
            format!("#define STORM_GLOBAL_PERCPU_SLOTS ({})", stringify!($slots)),
            "#endif /* BPFSTORM_ABI_H */".into(),
        ]
    };
}

/// Writes `bpfstorm_abi.h`, which `bpfstorm.h` includes, into `out_dir`.
pub fn generate_abi_h(out_dir: &Path) {
    println!(
        "cargo:rerun-if-changed={}/../../common/src/abi.rs",
        env!("CARGO_MANIFEST_DIR")
    );
    let header = storm_abi!(c_header).join("\n") + "\n";
    fs::write(out_dir.join("bpfstorm_abi.h"), header).expect("OUT_DIR is writable");
}

/// Kernel BTF to generate vmlinux.h from; `BPFSTORM_BTF` overrides it.
const DEFAULT_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Folder of the BPF C sources (`bpfstorm.bpf.c`, `bpfstorm.h`).
pub fn bpf_source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ebpf-c/bpf")
        .canonicalize()
        .expect("backends/ebpf-c/bpf exists in the workspace")
}

/// Writes `vmlinux.h` for the running kernel into `out_dir` and returns it.
/// Panics with what to do when the kernel has no BTF or bpftool is missing:
/// a build script has no better way to fail.
pub fn generate_vmlinux_h(out_dir: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=BPFSTORM_BTF");
    let btf = env::var("BPFSTORM_BTF").unwrap_or_else(|_| DEFAULT_BTF.to_string());
    if !Path::new(&btf).exists() {
        panic!(
            "no kernel BTF at {btf}: this kernel was built without CONFIG_DEBUG_INFO_BTF, so \
             vmlinux.h cannot be generated. Run on a kernel with BTF, or point BPFSTORM_BTF at \
             a BTF file for it."
        );
    }
    let output = Command::new("bpftool")
        .args(["btf", "dump", "file", &btf, "format", "c"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run bpftool ({e}): install it (scripts/setup does: apt-get install bpftool)")
        });
    if !output.status.success() {
        panic!(
            "bpftool btf dump file {btf} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let header = out_dir.join("vmlinux.h");
    fs::write(&header, output.stdout).expect("OUT_DIR is writable");
    header
}
