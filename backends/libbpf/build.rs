use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

#[path = "../ebpf-c/build_support.rs"]
mod build_support;

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src_dir = build_support::bpf_source_dir();
    build_support::generate_vmlinux_h(&out_dir);

    let source = src_dir.join("bpfstorm.bpf.c");
    SkeletonBuilder::new()
        .source(&source)
        .clang_args([
            "-I".as_ref(),
            out_dir.as_os_str(),
            "-I".as_ref(),
            src_dir.as_os_str(),
        ])
        .build_and_generate(out_dir.join("bpfstorm.skel.rs"))
        .expect("compiling bpfstorm.bpf.c (needs clang: scripts/setup installs it)");
    println!("cargo:rerun-if-changed={}", src_dir.display());
}
