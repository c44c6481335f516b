//! Builds `targets/tiny.c` into a static, libc-free executable that the
//! library embeds (see `storm::target`).

use std::env;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed=targets/tiny.c");
    println!("cargo:rerun-if-changed=build.rs");

    let Some(out_dir) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        eprintln!("OUT_DIR is not set; build.rs must run under cargo");
        return ExitCode::FAILURE;
    };
    let out = out_dir.join("tiny");

    // The cc crate picks the C compiler and target flags (CC, cross targets);
    // linking an executable ourselves is not something it does, so its
    // compiler is driven directly.
    let compiler = match cc::Build::new()
        .cargo_metadata(false)
        .opt_level(2)
        .debug(false)
        .try_get_compiler()
    {
        Ok(compiler) => compiler,
        Err(e) => {
            eprintln!("no C compiler found for targets/tiny.c: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cmd: Command = compiler.to_command();
    cmd.args([
        "-nostdlib",
        "-static",
        "-no-pie",
        "-fno-stack-protector",
        "-fno-asynchronous-unwind-tables",
        "-Wl,--build-id=none",
        "-s",
        "-o",
    ])
    .arg(&out)
    .arg("targets/tiny.c");

    match cmd.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("compiling targets/tiny.c failed ({status}): {cmd:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("running the C compiler for targets/tiny.c failed: {e}: {cmd:?}");
            ExitCode::FAILURE
        }
    }
}
