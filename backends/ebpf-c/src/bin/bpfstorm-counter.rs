//! The classic tutorial's exec counter on the C loader (`src/counter.c`):
//! counts execs with the chosen strategy, prints the count every interval,
//! and on Ctrl-C detaches, unloads and exits 0.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bpfstorm_common::{AttachPoint, Filter, MapKind, Strategy, UpdateMode};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "bpfstorm-counter",
    version,
    about = "Count execs with eBPF and print the count every interval, until Ctrl-C"
)]
struct Args {
    /// Attach point (the program loaded is <attach>__<map>__<update>__<filter>).
    #[arg(long, default_value = "tp_sys_enter_execve")]
    attach: AttachPoint,
    /// Map kind: the map that holds the count.
    #[arg(long, default_value = "array")]
    map: MapKind,
    /// Update mode [default: the map's first valid one]
    #[arg(long)]
    update: Option<UpdateMode>,
    /// Count only tasks in this cgroup v2 folder [default: every task]
    #[arg(long)]
    cgroup: Option<PathBuf>,
    /// Seconds between prints.
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
}

fn strategy(args: &Args) -> Result<Strategy, String> {
    let filter = match &args.cgroup {
        None => Filter::All,
        // A cgroup v2 id is its folder's inode number.
        Some(path) => Filter::Cgroup(
            std::fs::metadata(path)
                .map_err(|e| format!("cgroup {}: {e}", path.display()))?
                .ino(),
        ),
    };
    let update = args.update.unwrap_or(args.map.valid_updates()[0]);
    Strategy::new(args.attach, args.map, update, filter).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let interval = match Duration::try_from_secs_f64(args.interval) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            eprintln!("error: --interval must be a positive number of seconds");
            return ExitCode::FAILURE;
        }
    };
    let result = strategy(&args)
        .and_then(|s| bpfstorm_ebpf_c::counter_loop(&s, interval).map_err(|e| e.to_string()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
