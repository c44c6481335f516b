// Builds the kernel side (backends/aya/ebpf, Rust for the BPF target) and
// leaves it in OUT_DIR for `include_bytes_aligned!`. It needs rust-src and
// bpf-linker, which scripts/setup installs (bpf-linker into a cache keyed on
// `rustc -vV`). When either is missing or the build fails, the workspace
// still builds: the object is left empty and the reason is written beside
// it, so the backend answers "unavailable: <reason>" at run time. Under CI
// (CI=true) that is a build failure instead, never a silent skip.
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const OBJECT: &str = "bpfstorm-aya.bpf.o";
const REASON: &str = "bpfstorm-aya.unavailable";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let ebpf_dir = manifest_dir.join("ebpf");
    for path in [
        "src",
        "Cargo.toml",
        "Cargo.lock",
        "../../../common/src/abi.rs",
    ] {
        println!("cargo:rerun-if-changed={}", ebpf_dir.join(path).display());
    }
    for var in ["CI", "BPFSTORM_BPF_LINKER", "XDG_CACHE_HOME", "HOME"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let (object, reason) = match build(&ebpf_dir, &out_dir) {
        Ok(object) => (object, String::new()),
        Err(reason) => {
            if env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
                panic!("aya backend unavailable under CI (CI=true): {reason}");
            }
            println!("cargo:warning=aya backend unavailable: {reason}");
            (Vec::new(), reason)
        }
    };
    fs::write(out_dir.join(OBJECT), object).expect("OUT_DIR is writable");
    fs::write(out_dir.join(REASON), reason).expect("OUT_DIR is writable");
}

fn build(ebpf_dir: &Path, out_dir: &Path) -> Result<Vec<u8>, String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let linker = find_bpf_linker(&rustc)?;
    check_rust_src(&rustc)?;

    // One target dir for every profile and build of the outer workspace
    // (OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out): the object is
    // always built in release, so debug, release and clippy builds share it.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(out_dir)
        .join("bpfstorm-aya-ebpf");
    let linker_dir = linker.parent().expect("a file path has a parent");
    let path = env::join_paths(
        std::iter::once(linker_dir.to_path_buf())
            .chain(env::var_os("PATH").iter().flat_map(env::split_paths)),
    )
    .map_err(|e| format!("PATH: {e}"))?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let rustflags = [
        format!("--cfg=bpf_target_arch=\"{arch}\""),
        "-Cdebuginfo=2".into(),
        "-Clink-arg=--btf".into(),
    ]
    .join("\x1f");

    let output = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "bpfel-unknown-none",
        ])
        .args(["-Z", "build-std=core"])
        .arg("--manifest-path")
        .arg(ebpf_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // -Z build-std and the core_intrinsics feature on stable rustc.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .env("PATH", path)
        // The outer build's settings are not this one's (clippy's wrapper,
        // the outer target dir and flags).
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim_start().starts_with("Compiling"))
            .collect();
        let tail = tail[tail.len().saturating_sub(20)..].join("\n");
        return Err(format!("building backends/aya/ebpf failed:\n{tail}"));
    }
    let object = target_dir.join("bpfel-unknown-none/release/bpfstorm");
    println!("cargo:rerun-if-changed={}", object.display());
    fs::read(&object).map_err(|e| format!("reading {}: {e}", object.display()))
}

/// `rustc-<release>-<first 12 of commit-hash>`: the folder scripts/setup
/// installs bpf-linker into, so a new toolchain gets a new bpf-linker.
fn rustc_key(rustc: &str) -> Result<String, String> {
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run `{rustc} -vV`: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("unknown")
            .to_string()
    };
    let commit: String = field("commit-hash:").chars().take(12).collect();
    Ok(format!("rustc-{}-{commit}", field("release:")))
}

fn find_bpf_linker(rustc: &str) -> Result<PathBuf, String> {
    if let Some(path) = env::var_os("BPFSTORM_BPF_LINKER") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "BPFSTORM_BPF_LINKER={} is not a file",
                path.display()
            ))
        };
    }
    let cache = env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(cache) = cache {
        let linker = cache
            .join("bpfstorm/bpf-linker")
            .join(rustc_key(rustc)?)
            .join("bin/bpf-linker");
        // Rerun once scripts/setup has installed it (a missing path always reruns).
        println!("cargo:rerun-if-changed={}", linker.display());
        if linker.is_file() {
            return Ok(linker);
        }
    }
    env::var_os("PATH")
        .iter()
        .flat_map(env::split_paths)
        .map(|dir| dir.join("bpf-linker"))
        .find(|p| p.is_file())
        .ok_or_else(|| "bpf-linker not found; run scripts/setup".to_string())
}

fn check_rust_src(rustc: &str) -> Result<(), String> {
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run `{rustc} --print sysroot`: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let core = sysroot.join("lib/rustlib/src/rust/library/core");
    if core.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "rust-src is not installed (no {}); run scripts/setup",
            core.display()
        ))
    }
}
