//! Command-line flags, parsed into typed options.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use bpfstorm_common::{AttachPoint, MapKind, ReadPath, UpdateMode};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};

use crate::backends::BackendName;
use crate::guest::KernelChoice;
use crate::hot::Method;
use crate::measure::FilterKind;
use crate::plan::Matrix;
use crate::storm::{SpawnMethod, Target, MAX_EXECS_PER_WORKER, MAX_WORKERS};

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

// Parsed once per process: boxing `run`'s arguments would buy nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Write a run's markdown report and chart again from its CSV, or one
    /// report from the CSVs of several runs or hosts.
    Report(ReportArgs),
}

impl Command {
    /// Whether the command loads BPF (and so needs privileges and BTF).
    pub fn needs_kernel(&self) -> bool {
        !matches!(
            self,
            Command::Compare(_) | Command::Recommend(_) | Command::Report(_)
        )
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

/// A parser for one of `all`, known by `name`, for the strategy and storm
/// enums (not clap's own): clap refuses any other value as a usage error
/// (exit status 2), and `--help` lists every choice with its `help`.
fn choices<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
    help: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    let listed = all
        .iter()
        .map(move |&v| PossibleValue::new(name(v)).help(help(v)));
    PossibleValuesParser::new(listed).map(move |given| {
        *all.iter()
            .find(|&&v| name(v) == given)
            .expect("clap admits only the listed names")
    })
}

fn attach_points() -> impl TypedValueParser<Value = AttachPoint> {
    choices(AttachPoint::ALL, AttachPoint::name, AttachPoint::help)
}

fn map_kinds() -> impl TypedValueParser<Value = MapKind> {
    choices(MapKind::ALL, MapKind::name, MapKind::help)
}

fn update_modes() -> impl TypedValueParser<Value = UpdateMode> {
    choices(UpdateMode::ALL, UpdateMode::name, UpdateMode::help)
}

fn read_paths() -> impl TypedValueParser<Value = ReadPath> {
    choices(ReadPath::ALL, ReadPath::name, ReadPath::help)
}

fn targets() -> impl TypedValueParser<Value = Target> {
    choices(&Target::ALL, Target::name, Target::help)
}

fn methods() -> impl TypedValueParser<Value = Method> {
    choices(&Method::ALL, Method::name, Method::help)
}

/// A fraction strictly between 0 and 1.
fn fraction(given: &str) -> Result<f64, String> {
    match given.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!(
            "`{given}` is not a fraction between 0 and 1 (exclusive): 0.05 asks for +-5%"
        )),
    }
}

/// A positive number of seconds.
fn seconds(given: &str) -> Result<f64, String> {
    match given.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{given}` is not a number of seconds above 0 (and at most 86400)"
        )),
    }
}

fn spawn_methods() -> impl TypedValueParser<Value = SpawnMethod> {
    choices(&SpawnMethod::ALL, SpawnMethod::name, SpawnMethod::help)
}

/// The storm's own bounds, checked while parsing so a bad count is a usage
/// error like any other bad value.
fn workers() -> impl TypedValueParser<Value = u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_WORKERS))
}

/// `run --workers`: a count of workers, or `sweep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerCount {
    Exactly(u32),
    /// 1, 2, 4, ... up to twice the CPUs, with the CPU count itself: how
    /// the hot cost of each strategy grows with contention.
    Sweep,
}

impl fmt::Display for WorkerCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerCount::Exactly(n) => write!(f, "{n}"),
            WorkerCount::Sweep => f.write_str("sweep"),
        }
    }
}

fn worker_count(given: &str) -> Result<WorkerCount, String> {
    if given == "sweep" {
        return Ok(WorkerCount::Sweep);
    }
    match given.parse::<u32>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(WorkerCount::Exactly(n)),
        _ => Err(format!(
            "`{given}` is neither a count of workers from 1 to {MAX_WORKERS} nor `sweep`"
        )),
    }
}

/// The most keys a count is spread over: reading them one syscall each
/// takes about a second.
pub const MAX_KEYS: u32 = 1 << 20;
/// The largest map `--max-entries` makes.
pub const MAX_ENTRIES: u32 = 1 << 24;

fn keys() -> impl TypedValueParser<Value = u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_KEYS))
}

fn entries() -> impl TypedValueParser<Value = u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_ENTRIES))
}

fn execs() -> impl TypedValueParser<Value = u64> {
    clap::value_parser!(u64).range(1..=MAX_EXECS_PER_WORKER)
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Backends to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "libbpf")]
    pub backend: Vec<BackendName>,
    /// Attach points, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tp_sys_enter_execve",
        value_parser = attach_points()
    )]
    pub attach: Vec<AttachPoint>,
    /// Map kinds, comma-separated [default: those of --matrix]
    #[arg(long, value_delimiter = ',', value_parser = map_kinds())]
    pub map: Vec<MapKind>,
    /// The map kinds measured when --map is not given.
    #[arg(long, value_enum, default_value = "default", conflicts_with = "map")]
    pub matrix: Matrix,
    /// Update modes, comma-separated [default: every mode valid for each map]
    #[arg(long, value_delimiter = ',', value_parser = update_modes())]
    pub update: Vec<UpdateMode>,
    /// How user space reads each count, comma-separated; `mmap` applies
    /// only to the maps whose count is in a plain array (array, global,
    /// global_percpu): alone it measures just those, `syscall,mmap` reads
    /// them both ways and every other map by syscall
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "syscall",
        value_parser = read_paths()
    )]
    pub read: Vec<ReadPath>,
    /// Keys each count is spread over, 1 to 1048576, comma-separated (e.g.
    /// 1,64,4096,65536): the program counts an exec at its process's tgid
    /// mod K. Applies to the maps looked up by key (array, hash and their
    /// per-CPU and LRU kinds); the others are measured at 1 key only, and
    /// left out when 1 is not in the list [default: 1]
    #[arg(long, value_delimiter = ',', value_parser = keys())]
    pub keys: Vec<u32>,
    /// Entries of each keyed map, 1 to 16777216 [default: one per key,
    /// and for the LRU maps 128 more per CPU]. Fewer than --keys shows what
    /// a full map does: an array or hash counts what finds no slot as
    /// dropped, an LRU map evicts keys and loses their counts
    #[arg(long, requires = "keys", value_parser = entries())]
    pub max_entries: Option<u32>,
    /// Which execs count.
    #[arg(long, value_enum, default_value = "cgroup")]
    pub filter: FilterArg,
    /// Worker processes, 1 to 1024, comma-separated; each count is a cell
    /// of its own. `sweep` is 1, 2, 4, ... to twice the CPUs (and the CPU
    /// count): how each strategy's cost grows with contention
    /// [default: one per CPU]
    #[arg(long, value_delimiter = ',', value_parser = worker_count)]
    pub workers: Vec<WorkerCount>,
    /// Execs per worker, 1 to 10000000 [default: 1000; 100 in a guest]
    #[arg(long, value_parser = execs())]
    pub execs: Option<u64>,
    /// Repetitions of every cell, interleaved (all cells, then all again) so
    /// drift hits every cell alike [default: 3; 1 in a guest]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: Option<u32>,
    /// How each cell is measured, comma-separated [default: hot,storm;
    /// storm in a guest]. Hot covers the attach points a failing exec
    /// syscall reaches; naming it for one that only a successful exec
    /// reaches (sched_process_exec, lsm) is an error.
    #[arg(long, value_delimiter = ',', value_parser = methods())]
    pub method: Vec<Method>,
    /// Hot method: add rounds until each cell's 95% interval of ns/event is
    /// within this fraction of its median (0 to 1, exclusive).
    #[arg(long, default_value_t = 0.05, value_parser = fraction)]
    pub precision: f64,
    /// Hot method: seconds a cell may take to reach --precision; past it,
    /// the cell reports the precision it reached.
    #[arg(long, default_value_t = 3.0, value_parser = seconds)]
    pub max_time: f64,
    /// What the storm executes.
    #[arg(long, default_value = "tiny", value_parser = targets())]
    pub target: Target,
    /// How workers start each exec.
    #[arg(long, default_value = "fork", value_parser = spawn_methods())]
    pub spawn: SpawnMethod,
    /// Wall-clock limit for each storm, in seconds (1 to 86400); the storm is killed past it.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Folder for the run's CSV.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Print every column of the summary (counts, ns/run, sizes, load and
    /// read times, memory), however wide.
    #[arg(long)]
    pub wide: bool,
    /// Columns the summary fits (40 to 1000); columns that do not fit are left out.
    #[arg(long, default_value_t = crate::output::summary::DEFAULT_COLUMNS, conflicts_with = "wide",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(40..=1000))]
    pub columns: usize,
    #[command(flatten)]
    pub export: ExportArgs,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

/// Files besides the CSV and the report beside it, as hyperfine names them.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Also write the rows and the folded cells as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,
    /// Also write the markdown report to FILE (its charts beside it).
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,
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

    /// The methods asked for, or the default: both on the host, storms in a
    /// guest (emulation's costs drown a hook's).
    pub fn methods(&self, in_guest: bool) -> Vec<Method> {
        match (self.method.is_empty(), in_guest) {
            (false, _) => self.method.clone(),
            (true, false) => Method::ALL.to_vec(),
            (true, true) => vec![Method::Storm],
        }
    }

    /// The same matrix in a guest, with guest defaults for what was not given.
    pub fn guest_args(&self, results_dir: &Path) -> Vec<OsString> {
        // --matrix goes only where --map does not (they conflict).
        let matrix = if self.map.is_empty() {
            vec![self.matrix]
        } else {
            Vec::new()
        };
        let mut args = GuestArgs::new("run");
        args.list("backend", &self.backend)
            .list("attach", &self.attach)
            .list("map", &self.map)
            .list("matrix", &matrix)
            .list("update", &self.update)
            .list("read", &self.read)
            .flag("filter", FilterKind::from(self.filter).name())
            .list("workers", &self.workers)
            .flag("execs", self.execs(true))
            .flag("repeat", self.repeat(true))
            .list("method", &self.method)
            .flag("precision", self.precision)
            .flag("max-time", self.max_time)
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
            .flag("backend", self.backend)
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
    pub backend: Vec<BackendName>,
    /// Folder for the probe's CSV.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

#[derive(Debug, clap::Args)]
pub struct CollateralArgs {
    /// The backend that loads the hooks.
    #[arg(long, default_value = "libbpf")]
    pub backend: BackendName,
    /// Attach points to compare; tp_sys_enter_execve is the control (it never fires on getppid).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "raw_tp_sys_enter,tp_btf_sys_enter,tp_sys_enter_execve",
        value_parser = attach_points()
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
    /// The backend that loads the hooks.
    #[arg(long, default_value = "libbpf")]
    pub backend: BackendName,
    /// Attach points [default: all]
    #[arg(long, value_delimiter = ',', value_parser = attach_points())]
    pub attach: Vec<AttachPoint>,
    /// Storm targets [default: all]
    #[arg(long, value_delimiter = ',', value_parser = targets())]
    pub target: Vec<Target>,
    /// Storm workers per cell, 1 to 1024.
    #[arg(long, default_value_t = 2, value_parser = workers())]
    pub workers: u32,
    /// Execs per worker per cell, 1 to 10000000.
    #[arg(long, default_value_t = 100, value_parser = execs())]
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
    /// How to print the recommendation.
    #[arg(long, value_enum, default_value = "terminal")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Plain text: headings underlined, no markup.
    Terminal,
    /// Markdown.
    Md,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Run CSVs: one run's, or several runs' or hosts' (their rows together).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Folder for the report and its charts [default: the first CSV's folder]
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
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
    fn the_summary_is_wide_or_fits_some_columns_not_both() {
        let run = |args: &[&str]| Cli::try_parse_from([&["bpfstorm", "run"], args].concat());
        let Command::Run(args) = run(&[]).unwrap().command else {
            unreachable!()
        };
        assert_eq!((args.wide, args.columns), (false, 100));
        assert!(run(&["--wide", "--columns", "80"]).is_err());
        assert!(run(&["--columns", "39"]).is_err());
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
            "3,sweep",
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
        assert_eq!(guest.workers, [WorkerCount::Exactly(3), WorkerCount::Sweep]);
        let full = Cli::try_parse_from(["bpfstorm", "run", "--matrix", "full"]).unwrap();
        let Command::Run(full) = full.command else {
            panic!("not run")
        };
        let mut argv = vec![OsString::from("bpfstorm")];
        argv.extend(full.guest_args(Path::new("/scratch")));
        let Command::Run(full_guest) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not run")
        };
        assert_eq!(full_guest.matrix, Matrix::Full);
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
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("invalid value 'arry' for '--map <MAP>'"),
            "{text}"
        );
        assert!(text.contains("percpu_array"), "{text}");
    }

    /// What `--help` lists for `run --<flag>`: each choice and its meaning.
    fn listed(flag: &str) -> Vec<(String, String)> {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").expect("run");
        let arg = run
            .get_arguments()
            .find(|arg| arg.get_long() == Some(flag))
            .unwrap_or_else(|| panic!("--{flag}"));
        arg.get_possible_values()
            .iter()
            .map(|v| {
                let help = v.get_help().map(ToString::to_string);
                (v.get_name().to_string(), help.unwrap_or_default())
            })
            .collect()
    }

    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|&v| name(v)).collect()
    }

    #[test]
    fn help_lists_every_choice_with_its_meaning() {
        let choices = [
            ("backend", crate::backends::NAMES.to_vec()),
            ("attach", names(AttachPoint::ALL, AttachPoint::name)),
            ("map", names(MapKind::ALL, MapKind::name)),
            ("update", names(UpdateMode::ALL, UpdateMode::name)),
            ("read", names(ReadPath::ALL, ReadPath::name)),
            ("target", names(&Target::ALL, Target::name)),
            ("spawn", names(&SpawnMethod::ALL, SpawnMethod::name)),
        ];
        for (flag, all) in choices {
            let listed = listed(flag);
            let listed_names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(listed_names, all, "--{flag}");
            for (name, help) in &listed {
                assert!(!help.is_empty(), "--{flag} {name}: no meaning");
            }
        }
    }
}
