//! Command-line flags, parsed into typed options.

use std::path::PathBuf;

use bpfstorm_common::{AttachPoint, MapKind, UpdateMode};
use clap::{Parser, Subcommand, ValueEnum};

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
    /// Execs per worker.
    #[arg(long, default_value_t = 2500)]
    pub execs: u64,
    /// What the storm executes: `tiny` (a static no-libc binary), `true` (/bin/true).
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
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Backends to probe, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "libbpf")]
    pub backend: Vec<String>,
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
