//! Command-line flags, parsed into typed options.

use std::path::PathBuf;

use bpfstorm_common::{AttachPoint, MapKind, UpdateMode};
use clap::{Parser, Subcommand, ValueEnum};

use crate::guest::KernelChoice;
use crate::measure::FilterKind;
use crate::storm::{SpawnMethod, Target};

#[derive(Debug, Parser)]
#[command(
    name = "bpfstorm",
    version,
    about = "Measure how eBPF exec counters count and what they cost, on this kernel"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a matrix of strategies against exec storms; print a table and write a CSV.
    Run(RunArgs),
    /// Show which attach points and maps this kernel supports.
    Probe(ProbeArgs),
    /// Measure what each hook adds to every syscall (a getppid loop on all CPUs).
    Collateral(CollateralArgs),
    /// Write the semantics matrix: what each hook counts for each kind of exec.
    Semantics(SemanticsArgs),
    /// Compare run CSVs cell by cell; exit status 1 on a regression.
    Compare(CompareArgs),
    /// Recommend a strategy from a run CSV.
    Recommend(RecommendArgs),
}

impl Command {
    /// Whether the command loads BPF (and so needs privileges and BTF).
    pub fn needs_kernel(&self) -> bool {
        !matches!(self, Command::Compare(_) | Command::Recommend(_))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FilterArg {
    /// Count every exec on the machine, as the classic tutorial does.
    All,
    /// Count only execs of the storm's own cgroup (exact against the oracles).
    Cgroup,
}

impl From<FilterArg> for FilterKind {
    fn from(arg: FilterArg) -> FilterKind {
        match arg {
            FilterArg::All => FilterKind::All,
            FilterArg::Cgroup => FilterKind::Cgroup,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Backends to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "libbpf")]
    pub backend: Vec<String>,
    /// Attach points, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "tp_sys_enter_execve")]
    pub attach: Vec<AttachPoint>,
    /// Map kinds, comma-separated [default: all]
    #[arg(long, value_delimiter = ',')]
    pub map: Vec<MapKind>,
    /// Update modes, comma-separated [default: every mode valid for each map]
    #[arg(long, value_delimiter = ',')]
    pub update: Vec<UpdateMode>,
    #[arg(long, value_enum, default_value = "cgroup")]
    pub filter: FilterArg,
    /// Storm worker processes [default: one per CPU]
    #[arg(long)]
    pub workers: Option<u32>,
    /// Execs per worker [default: 1000; 100 in a guest]
    #[arg(long)]
    pub execs: Option<u64>,
    /// Repetitions of every cell, interleaved (all cells, then all again) so
    /// drift hits every cell alike [default: 3; 1 in a guest]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: Option<u32>,
    /// What the storm executes: `tiny` (a static no-libc binary), `true` (/bin/true),
    /// `script` (a #! script run by tiny), `missing` (ENOENT), `noexec` (EACCES),
    /// `fexecve` (execveat on an fd; fork only), `threaded` (exec from a
    /// two-thread process; fork only).
    #[arg(long, default_value = "tiny")]
    pub target: Target,
    /// How workers start each exec: `fork` (fork+execve) or `posix_spawn`.
    #[arg(long, default_value = "fork")]
    pub spawn: SpawnMethod,
    /// Wall-clock limit for each storm, in seconds; the storm is killed past it.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Folder for the run's CSV.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

/// A run's options for a guest: the same matrix with guest defaults for
/// what was not given, written to `results_dir`.
impl RunArgs {
    pub fn guest_args(&self, results_dir: &std::path::Path) -> Vec<std::ffi::OsString> {
        let list = |items: &[String]| items.join(",");
        let names = |items: Vec<String>| list(&items);
        let mut args: Vec<std::ffi::OsString> = vec!["run".into()];
        let mut flag = |name: &str, value: String| {
            args.push(format!("--{name}").into());
            args.push(value.into());
        };
        flag("backend", list(&self.backend));
        flag(
            "attach",
            names(self.attach.iter().map(|a| a.to_string()).collect()),
        );
        if !self.map.is_empty() {
            flag(
                "map",
                names(self.map.iter().map(|m| m.to_string()).collect()),
            );
        }
        if !self.update.is_empty() {
            flag(
                "update",
                names(self.update.iter().map(|u| u.to_string()).collect()),
            );
        }
        flag("filter", FilterKind::from(self.filter).name().into());
        if let Some(w) = self.workers {
            flag("workers", w.to_string());
        }
        flag("execs", self.execs.unwrap_or(GUEST_EXECS).to_string());
        flag("repeat", self.repeat.unwrap_or(1).to_string());
        flag("target", self.target.to_string());
        flag("spawn", self.spawn.to_string());
        flag("timeout", self.timeout.to_string());
        flag("results-dir", results_dir.display().to_string());
        args
    }
}

/// Execs per worker in a guest, where one exec costs ~15 ms (emulated).
pub const GUEST_EXECS: u64 = 100;

#[derive(Debug, clap::Args)]
pub struct KernelArgs {
    /// Kernels to run on, comma-separated: `host` (this machine's), or a
    /// Debian cloud kernel series booted in a QEMU guest under software
    /// emulation (`6.1`, `6.12`; fetched by scripts/setup-guests). Guest
    /// rows count for real; their times are emulation's (timing = emulated).
    #[arg(long = "kernel", value_delimiter = ',', default_value = "host")]
    pub kernel: Vec<KernelChoice>,
    /// Wall-clock limit for each guest, boot included, in seconds.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(30..=86_400))]
    pub guest_timeout: u64,
}

impl KernelArgs {
    pub fn host(&self) -> bool {
        self.kernel.iter().any(KernelChoice::is_host)
    }

    pub fn guest_limit(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.guest_timeout)
    }
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Backends to probe, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "libbpf")]
    pub backend: Vec<String>,
    /// Folder for the probe's CSV.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

#[derive(Debug, clap::Args)]
pub struct CollateralArgs {
    #[arg(long, default_value = "libbpf")]
    pub backend: String,
    /// Attach points to compare; tp_sys_enter_execve is the control (it never fires on getppid).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "raw_tp_sys_enter,tp_btf_sys_enter,tp_sys_enter_execve"
    )]
    pub attach: Vec<AttachPoint>,
    /// Pairs of rounds (without, with the hook) per attach point.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub rounds: u32,
    /// Length of one round, in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub round_ms: u64,
    /// Looping threads [default: one per CPU]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct SemanticsArgs {
    #[arg(long, default_value = "libbpf")]
    pub backend: String,
    /// Attach points [default: all]
    #[arg(long, value_delimiter = ',')]
    pub attach: Vec<AttachPoint>,
    /// Storm targets [default: all]
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<Target>,
    /// Storm workers per cell.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Execs per worker per cell.
    #[arg(long, default_value_t = 100)]
    pub execs: u64,
    /// Folder for the reports: semantics-<kernel>.md and .csv per kernel,
    /// and semantics-kernels.md across them when there are several.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The reference run (e.g. a committed baseline under results/).
    pub base: PathBuf,
    /// Runs to compare with it.
    #[arg(required_unless_present = "by_kernel")]
    pub new: Vec<PathBuf>,
    /// Instead of base vs new: every strategy of the given runs, a column
    /// per kernel (e.g. a `run --kernel host,6.1,6.12`).
    #[arg(long)]
    pub by_kernel: bool,
    /// Changes smaller than this (percent) count as the same even outside the noise.
    #[arg(long, default_value_t = 5.0)]
    pub threshold: f64,
    /// Also write the markdown report to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    /// A run CSV [default: the newest results/run-*.csv]
    pub run: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_map_kind_is_refused_with_the_choices() {
        let err = Cli::try_parse_from(["bpfstorm", "run", "--map", "arry"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown map kind `arry`"), "{text}");
        assert!(text.contains("percpu_array"), "{text}");
    }
}
