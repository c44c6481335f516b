//! Who else was busy on the hooks we measure. A program's bpf_stats count
//! every run of it, the storm's and everyone else's: another bpfstorm, or
//! any process exec'ing, adds runs that are not the storm's (two concurrent
//! runs each saw `run_cnt` double). The counts stay exact (they are scoped to
//! the storm's cgroup); the timing figures are what this flags.

use std::fs;

use crate::hot::HotCell;
use crate::measure::Cell;
use crate::storm::{Target, Trigger};

/// Foreign execs above this share of the storm's own are worth a flag.
const FOREIGN_SHARE: f64 = 0.01;

/// What else ran on the hook while `cell` was measured, empty when nothing
/// worth saying did.
pub fn describe(cell: &Cell, target: Target) -> String {
    let mut said = Vec::new();
    // The storm's own execve calls: one per exec issued, none for fexecve
    // (execveat).
    let own = if target == Target::Fexecve {
        0
    } else {
        cell.storm.issued
    };
    // Scoped to the storm's cgroup, the oracle sees exactly the storm's own
    // execve calls.
    let scoped = cell.strategy.filter().cgroup_id().is_some();
    if scoped && !cell.storm.timed_out {
        said.extend(oracle_missed(cell.perf_sys_enter_execve, own));
    }
    let foreign = cell.perf_sys_enter_execve_system.saturating_sub(own);
    if foreign > 0 && foreign as f64 > FOREIGN_SHARE * own.max(1) as f64 {
        said.push(format!(
            "{foreign} execve calls outside the storm during the cell (the storm made {own}): \
             timings include the program's runs on them"
        ));
    }
    said.extend(other_bpfstorms_running());
    said.join("; ")
}

/// Whether the perf oracle saw the `own` calls the workers made: cgroup-
/// scoped perf events have been seen to miss some while another process
/// opens and closes perf events on the CPUs (another bpfstorm's hot rounds).
fn oracle_missed(seen: u64, own: u64) -> Option<String> {
    (seen != own).then(|| {
        format!(
            "the perf oracle saw {seen} of the {own} calls the workers made: its count, and \
             `exact`, are not to be trusted in this cell"
        )
    })
}

/// What else ran on the hook while the hot `cell` was measured, and whether
/// the perf oracle saw every call the workers made: empty when nothing
/// worth saying happened.
pub fn describe_hot(cell: &HotCell) -> String {
    let mut said = Vec::new();
    let own = cell.issued;
    let seen = match cell.trigger {
        Trigger::Execve => cell.oracle.execve,
        Trigger::Execveat => cell.oracle.execveat,
    };
    if cell.strategy.filter().cgroup_id().is_some() {
        said.extend(oracle_missed(seen, own));
    }
    let foreign = match cell.trigger {
        Trigger::Execve => cell.oracle.execve_system.saturating_sub(own),
        Trigger::Execveat => cell.oracle.execve_system,
    };
    if foreign > 0 && foreign as f64 > FOREIGN_SHARE * own.max(1) as f64 {
        said.push(format!(
            "{foreign} execve calls outside the cell's rounds: timings include the program's \
             runs on them"
        ));
    }
    said.extend(other_bpfstorms_running());
    said.join("; ")
}

/// Says which other bpfstorm processes are running, if any.
fn other_bpfstorms_running() -> Option<String> {
    let others = other_bpfstorms();
    (!others.is_empty()).then(|| {
        let pids: Vec<String> = others.iter().map(i32::to_string).collect();
        format!("another bpfstorm was running (pid {})", pids.join(", "))
    })
}

/// Pids of bpfstorm processes that are neither this one nor its own
/// descendants (storm workers are forks of it).
pub fn other_bpfstorms() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| stat(pid).is_some_and(|(comm, _)| comm == "bpfstorm"))
        .filter(|&pid| !descends_from(pid, me))
        .collect()
}

/// The command name and parent pid of `pid`, from /proc/<pid>/stat.
fn stat(pid: i32) -> Option<(String, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(String, i32)> {
    // comm may hold spaces and parentheses: it ends at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let ppid = text
        .get(close + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((comm, ppid))
}

fn descends_from(mut pid: i32, ancestor: i32) -> bool {
    // A chain this deep is a loop or a race with exiting processes.
    for _ in 0..64 {
        match stat(pid) {
            Some((_, ppid)) if ppid == ancestor => return true,
            Some((_, ppid)) if ppid > 1 => pid = ppid,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        assert_eq!(
            parse_stat("42 (bpfstorm) S 7 42 42 0 -1"),
            Some(("bpfstorm".into(), 7))
        );
        assert_eq!(
            parse_stat("42 (a) b) (c) R 9 1 1"),
            Some(("a) b) (c".into(), 9))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_not_another() {
        assert!(!other_bpfstorms().contains(&(std::process::id() as i32)));
    }
}
