//! Compiles the shared BPF C source, has bpftool generate its C skeleton,
//! and builds the C loader on it against libbpf-sys's vendored libbpf: the
//! headers here, the library itself when the crate links (see lib.rs).

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

#[path = "build_support.rs"]
mod build_support;

/// Runs a build tool, panicking with its output and a hint when it fails.
fn run(cmd: &mut Command, hint: &str) -> Vec<u8> {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): {hint}"));
    if !output.status.success() {
        panic!(
            "{cmd:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output.stdout
}

/// The kernel's name for the target architecture, as bpf_tracing.h wants it.
fn bpf_target_arch() -> String {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "powerpc64" => "powerpc",
        "s390x" => "s390",
        "riscv64" => "riscv",
        "loongarch64" => "loongarch",
        other => other,
    }
    .to_string()
}

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bpf_dir = build_support::bpf_source_dir();
    // libbpf-sys (`links = "bpf"`) exports the include folder of the libbpf
    // it builds: the loader compiles against the library it links.
    let libbpf_include =
        PathBuf::from(env::var_os("DEP_BPF_INCLUDE").expect("libbpf-sys exports DEP_BPF_INCLUDE"));
    build_support::generate_vmlinux_h(&out_dir);
    build_support::generate_abi_h(&out_dir);

    let unlinked = out_dir.join("bpfstorm.tmp.bpf.o");
    let object = out_dir.join("bpfstorm.bpf.o");
    let mut clang = Command::new(env::var_os("CLANG").unwrap_or_else(|| "clang".into()));
    clang
        // A map kind in common/src/abi.rs without its `case` is an error, not a
        // program that counts nothing.
        .args([
            "-g",
            "-O2",
            "-target",
            "bpf",
            "-fno-stack-protector",
            "-Werror=switch",
        ])
        .arg(format!("-D__TARGET_ARCH_{}", bpf_target_arch()));
    for dir in [&out_dir, &bpf_dir, &libbpf_include] {
        clang.arg("-I").arg(dir);
    }
    clang
        .arg("-c")
        .arg(bpf_dir.join("bpfstorm.bpf.c"))
        .arg("-o")
        .arg(&unlinked);
    run(&mut clang, "install clang (scripts/setup does)");

    // `gen object` is the BPF static linker: it finalizes the object as
    // libbpf-cargo does before the skeleton embeds it.
    run(
        Command::new("bpftool")
            .args([OsStr::new("gen"), OsStr::new("object")])
            .arg(&object)
            .arg(&unlinked),
        "install bpftool (scripts/setup does)",
    );
    let skeleton = run(
        Command::new("bpftool")
            .args(["gen", "skeleton"])
            .arg(&object)
            .args(["name", "bpfstorm"]),
        "install bpftool (scripts/setup does)",
    );
    fs::write(out_dir.join("bpfstorm.skel.h"), skeleton).expect("OUT_DIR is writable");

    cc::Build::new()
        .files(["src/loader.c", "src/counter.c"])
        .include(&out_dir)
        .include(&bpf_dir)
        .include(&libbpf_include)
        .compile("bpfstorm_c_loader");

    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    for file in [
        "src/loader.c",
        "src/loader.h",
        "src/counter.c",
        "build_support.rs",
    ] {
        println!("cargo:rerun-if-changed={file}");
    }
}
