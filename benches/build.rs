//! Builds c/execloop.c, the C yardstick the storm engine is measured against.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=c/execloop.c");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("execloop");
    let compiler = cc::Build::new()
        .opt_level(2)
        .cargo_metadata(false)
        .get_compiler();
    let status = compiler
        .to_command()
        .arg("-o")
        .arg(&out)
        .arg("c/execloop.c")
        .status()
        .expect("running the C compiler (scripts/setup installs gcc)");
    assert!(status.success(), "compiling c/execloop.c failed");
    println!("cargo:rustc-env=EXECLOOP={}", out.display());
}
