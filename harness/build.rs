//! Builds `targets/tiny.c` into a static, libc-free executable that the
//! library embeds (see `storm::target`).

use std::env;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed=targets/tiny.c");
    println!("cargo:rerun-if-changed=build.rs");
    embed_source_rev();

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

/// Stamps the source revision into the binary (`BPFSTORM_GIT_REV`), so that
/// bpfstorm, running as root, never runs git in a tree that may be another
/// user's (their `core.fsmonitor` would run as root). The sources and git's
/// HEAD and index are watched, so "-dirty" follows edits.
fn embed_source_rev() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let top = manifest.parent().unwrap_or(&manifest).to_path_buf();
    for watched in [
        "harness/src",
        "common/src",
        "backends",
        ".git/HEAD",
        ".git/index",
    ] {
        println!("cargo:rerun-if-changed={}", top.join(watched).display());
    }
    let rev = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BPFSTORM_GIT_REV={rev}");
}
