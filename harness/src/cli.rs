//! Command-line flags, parsed into typed options.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

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
    /// Wall-clock limit for each storm, in seconds (1 to 86400); the storm is killed past it.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Folder for the run's CSV.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

/// A command line for the same command in a guest: flags given here,
/// the guest's own results folder, and nothing of `--kernel`.
struct GuestArgs(Vec<OsString>);

impl GuestArgs {
    fn new(command: &str) -> GuestArgs {
        GuestArgs(vec![command.into()])
    }

    fn flag(&mut self, name: &str, value: impl fmt::Display) -> &mut Self {
        self.0.push(format!("--{name}").into());
        self.0.push(value.to_string().into());
        self
    }

    /// A comma-separated list, left out when empty (the guest's default).
    fn list<T: fmt::Display>(&mut self, name: &str, items: &[T]) -> &mut Self {
        if !items.is_empty() {
            let joined: Vec<String> = items.iter().map(T::to_string).collect();
            self.flag(name, joined.join(","));
        }
        self
    }

    fn done(&mut self, results_dir: &Path) -> Vec<OsString> {
        self.0.push("--results-dir".into());
        self.0.push(results_dir.into());
        std::mem::take(&mut self.0)
    }
}

/// Execs per worker in a guest, where one exec costs ~15 ms (emulated).
pub const GUEST_EXECS: u64 = 100;

impl RunArgs {
    pub fn execs(&self, in_guest: bool) -> u64 {
        self.execs
            .unwrap_or(if in_guest { GUEST_EXECS } else { 1000 })
    }

    pub fn repeat(&self, in_guest: bool) -> u32 {
        self.repeat.unwrap_or(if in_guest { 1 } else { 3 })
    }

    /// The same matrix in a guest, with guest defaults for what was not given.
    pub fn guest_args(&self, results_dir: &Path) -> Vec<OsString> {
        let mut args = GuestArgs::new("run");
        args.list("backend", &self.backend)
            .list("attach", &self.attach)
            .list("map", &self.map)
            .list("update", &self.update)
            .flag("filter", FilterKind::from(self.filter).name())
            .list("workers", &self.workers.into_iter().collect::<Vec<_>>())
            .flag("execs", self.execs(true))
            .flag("repeat", self.repeat(true))
            .flag("target", self.target)
            .flag("spawn", self.spawn)
            .flag("timeout", self.timeout);
        args.done(results_dir)
    }
}

impl ProbeArgs {
    pub fn guest_args(&self, results_dir: &Path) -> Vec<OsString> {
        GuestArgs::new("probe")
            .list("backend", &self.backend)
            .done(results_dir)
    }
}

impl SemanticsArgs {
    pub fn guest_args(&self, results_dir: &Path) -> Vec<OsString> {
        GuestArgs::new("semantics")
            .flag("backend", &self.backend)
            .list("attach", &self.attach)
            .list("target", &self.target)
            .flag("workers", self.workers)
            .flag("execs", self.execs)
            .done(results_dir)
    }
}

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
    /// Judge ns/run between runs on different CPU models too (by default
    /// only accuracy is judged across CPUs: times of two CPUs differ anyway).
    #[arg(long)]
    pub across_cpus: bool,
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
    fn guest_command_lines_keep_every_flag() {
        let cli = Cli::try_parse_from([
            "bpfstorm",
            "run",
            "--backend",
            "libbpf,aya",
            "--attach",
            "fentry_sys_execve,kprobe_sys_execve",
            "--map",
            "array,hash",
            "--update",
            "atomic",
            "--filter",
            "all",
            "--workers",
            "3",
            "--execs",
            "7",
            "--target",
            "script",
            "--spawn",
            "posix_spawn",
            "--timeout",
            "9",
            "--kernel",
            "host,6.12",
            "--results-dir",
            "elsewhere",
        ])
        .unwrap();
        let Command::Run(host) = cli.command else {
            panic!("not run")
        };
        let mut argv = vec![OsString::from("bpfstorm")];
        argv.extend(host.guest_args(Path::new("/scratch")));
        let Command::Run(guest) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not run")
        };
        assert_eq!(guest.backend, host.backend);
        assert_eq!(guest.attach, host.attach);
        assert_eq!(guest.map, host.map);
        assert_eq!(guest.update, host.update);
        assert!(matches!(guest.filter, FilterArg::All));
        assert_eq!(guest.workers, Some(3));
        assert_eq!(guest.execs, Some(7));
        assert_eq!(
            guest.repeat,
            Some(1),
            "one repetition by default in a guest"
        );
        assert_eq!(guest.target.to_string(), "script");
        assert_eq!(guest.spawn.to_string(), "posix_spawn");
        assert_eq!(guest.timeout, 9);
        assert_eq!(guest.results_dir, Path::new("/scratch"));
        assert_eq!(guest.kernels.kernel, [KernelChoice::Host]);
    }

    #[test]
    fn bad_map_kind_is_refused_with_the_choices() {
        let err = Cli::try_parse_from(["bpfstorm", "run", "--map", "arry"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown map kind `arry`"), "{text}");
        assert!(text.contains("percpu_array"), "{text}");
    }
}
