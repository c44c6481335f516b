use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

#[path = "../ebpf-c/build_support.rs"]
mod build_support;

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src_dir = build_support::bpf_source_dir();
    build_support::generate_vmlinux_h(&out_dir);
    build_support::generate_abi_h(&out_dir);

    let source = src_dir.join("bpfstorm.bpf.c");
    let skeleton = out_dir.join("bpfstorm.skel.rs");
    SkeletonBuilder::new()
        .source(&source)
        .clang_args([
            // A map kind without its `case` is an error (see backends/ebpf-c/build.rs).
            "-Werror=switch".as_ref(),
            "-I".as_ref(),
            out_dir.as_os_str(),
            "-I".as_ref(),
            src_dir.as_os_str(),
        ])
        .build_and_generate(&skeleton)
        .expect("compiling bpfstorm.bpf.c (needs clang: scripts/setup installs it)");
    linearize_attach(&skeleton);
    println!("cargo:rerun-if-changed={}", src_dir.display());
}

/// libbpf-cargo 0.27 generates the skeleton's `attach()` (which bpfstorm
/// never calls: it attaches the one program it loads) as one struct
/// literal with a `prog_link_ptr(i)?` per program. Each `?` drops the links
/// made before it, so the code grows with the square of the program count:
/// with a program per strategy (224), LLVM spends about 4 minutes on that
/// one function in a release build. `prog_link_ptr(i)` fails only for an
/// index past the last program, and the generator numbers the programs
/// itself, so the `?` becomes "no link", which makes the code linear.
/// Should the generator change, the skeleton is left as it is (correct,
/// only slow to build) and the build says so.
fn linearize_attach(skeleton: &Path) {
    const CALL: &str = "prog_link_ptr(";
    let text = fs::read_to_string(skeleton).expect("the skeleton was just written");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    let mut patched = 0;
    while let Some(at) = rest.find(CALL) {
        let (before, after) = rest.split_at(at + CALL.len());
        out.push_str(before);
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        match after[digits..].strip_prefix(")?") {
            Some(tail) if digits > 0 => {
                out.push_str(&after[..digits]);
                out.push_str(").unwrap_or(core::ptr::null_mut())");
                rest = tail;
                patched += 1;
            }
            _ => rest = after,
        }
    }
    out.push_str(rest);
    if patched == 0 {
        println!(
            "cargo:warning=the libbpf-cargo skeleton's attach() has a new shape; left as \
             generated (release builds of bpfstorm-libbpf take minutes)"
        );
        return;
    }
    fs::write(skeleton, out).expect("OUT_DIR is writable");
}
