//! What a storm runs: its size, target and spawn method, validated before
//! anything forks.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::StormError;

pub const MAX_WORKERS: u32 = 1024;
pub const MAX_EXECS_PER_WORKER: u64 = 10_000_000;

/// What each storm iteration execs. Each variant's doc says what one
/// iteration shows to the exec tracepoints and hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A static, libc-free binary that exits at once: the cheapest exec.
    /// One execve, one successful exec.
    Tiny,
    /// /bin/true: a typical small dynamically linked program. One execve,
    /// one successful exec.
    BinTrue,
    /// A `#!` script whose interpreter is the tiny binary. One execve, one
    /// successful exec (sched_process_exec), but two passes through binfmt
    /// (the script, then its interpreter), so a bprm_check_security hook
    /// runs twice.
    Script,
    /// A path that does not exist: one execve that fails with ENOENT, no
    /// exec. Counted as failed.
    Missing,
    /// An existing regular file without any exec bit: one execve that fails
    /// with EACCES, no exec. Counted as failed.
    NotExecutable,
    /// execveat(fd, "", AT_EMPTY_PATH) on an fd of the tiny binary opened
    /// before the workers fork: one execveat (not execve), one successful
    /// exec. Fork spawning only (posix_spawn has no execveat).
    Fexecve,
    /// The tiny binary exec'd by a process with a second thread (made with
    /// a raw clone(CLONE_THREAD) right after fork), which the exec kills
    /// (de_thread). One execve, one successful exec. Fork spawning only.
    Threaded,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Tiny,
        Target::BinTrue,
        Target::Script,
        Target::Missing,
        Target::NotExecutable,
        Target::Fexecve,
        Target::Threaded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Tiny => "tiny",
            Target::BinTrue => "true",
            Target::Script => "script",
            Target::Missing => "missing",
            Target::NotExecutable => "noexec",
            Target::Fexecve => "fexecve",
            Target::Threaded => "threaded",
        }
    }

    /// What it is, in one line, for `--help`.
    pub fn help(self) -> &'static str {
        match self {
            Target::Tiny => "A static, libc-free binary that exits at once: the cheapest exec",
            Target::BinTrue => "/bin/true: a typical small dynamically linked program",
            Target::Script => "A #! script run by tiny: one exec, two passes through binfmt",
            Target::Missing => "A path that does not exist: every execve fails (ENOENT)",
            Target::NotExecutable => "A file without an exec bit: every execve fails (EACCES)",
            Target::Fexecve => "execveat on an fd of tiny, not execve (fork only)",
            Target::Threaded => "tiny exec'd by a process with a second thread (fork only)",
        }
    }

    /// Whether each exec is expected to succeed and the target to exit 0
    /// (`succeeded == issued`); otherwise every one fails (`failed ==
    /// issued`) and there is no exec.
    pub fn expect_success(self) -> bool {
        !matches!(self, Target::Missing | Target::NotExecutable)
    }

    /// The system call each iteration makes once: `execve` or `execveat`
    /// (the `syscalls:sys_enter_<name>` tracepoint that sees it).
    pub fn syscall(self) -> &'static str {
        match self {
            Target::Fexecve => "execveat",
            _ => "execve",
        }
    }

    /// Whether `spawn` can start this target. posix_spawn only runs execve
    /// on a path, in a child it controls, and a vfork child borrows its
    /// parent's memory until it execs: no execveat, no extra thread.
    pub fn supports(self, spawn: SpawnMethod) -> bool {
        match spawn {
            SpawnMethod::Fork => true,
            SpawnMethod::PosixSpawn | SpawnMethod::Vfork => {
                !matches!(self, Target::Fexecve | Target::Threaded)
            }
        }
    }

    /// Tasks each worker has alive at once: itself, its target and, for
    /// `threaded`, the target's second thread.
    pub fn tasks_per_worker(self) -> u64 {
        match self {
            Target::Threaded => 3,
            _ => 2,
        }
    }
}

/// How a worker starts each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpawnMethod {
    /// fork, then execve in the child.
    Fork,
    /// glibc's posix_spawn (clone with CLONE_VM | CLONE_VFORK).
    PosixSpawn,
    /// clone with CLONE_VM | CLONE_VFORK on a stack of its own, then
    /// execve: what a C program's vfork does, without posix_spawn's set-up.
    Vfork,
}

impl SpawnMethod {
    pub const ALL: [SpawnMethod; 3] = [
        SpawnMethod::Fork,
        SpawnMethod::PosixSpawn,
        SpawnMethod::Vfork,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SpawnMethod::Fork => "fork",
            SpawnMethod::PosixSpawn => "posix_spawn",
            SpawnMethod::Vfork => "vfork",
        }
    }

    /// What it is, in one line, for `--help`.
    pub fn help(self) -> &'static str {
        match self {
            SpawnMethod::Fork => "fork, then execve in the child",
            SpawnMethod::PosixSpawn => "glibc's posix_spawn (clone with CLONE_VM | CLONE_VFORK)",
            SpawnMethod::Vfork => {
                "vfork (clone with CLONE_VM | CLONE_VFORK), then execve: the cheapest spawn"
            }
        }
    }
}

/// A name that is none of the choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; choose one of: {choices}")]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub choices: String,
}

fn parse_name<T: Copy>(
    given: &str,
    what: &'static str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|&t| name(t) == given)
        .ok_or_else(|| UnknownName {
            what,
            given: given.to_owned(),
            choices: all.iter().map(|&t| name(t)).collect::<Vec<_>>().join(", "),
        })
}

impl FromStr for Target {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Target, UnknownName> {
        parse_name(s, "target", &Target::ALL, Target::name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SpawnMethod {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<SpawnMethod, UnknownName> {
        parse_name(s, "spawn method", &SpawnMethod::ALL, SpawnMethod::name)
    }
}

impl fmt::Display for SpawnMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A syscall that reaches the exec syscalls' entry hooks and returns at
/// once: the path is empty, so it fails with ENOENT before any lookup (a
/// NULL path costs four times as much here: the kernel takes a page fault
/// to find it bad). The hot method fires it in a tight loop in place of
/// spawning a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// libc's execve("", NULL, NULL): through libc, so its uprobe fires too.
    Execve,
    /// execveat(AT_FDCWD, "", NULL, NULL, 0), as a raw syscall.
    Execveat,
}

impl Trigger {
    /// The `syscalls:sys_enter_<name>` tracepoint it reaches.
    pub fn syscall(self) -> &'static str {
        match self {
            Trigger::Execve => "execve",
            Trigger::Execveat => "execveat",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormSpec {
    pub workers: u32,
    pub execs_per_worker: u64,
    pub target: Target,
    pub spawn: SpawnMethod,
    /// Past this, the storm is killed and reported with `timed_out`.
    pub timeout: Duration,
    /// Fired by each worker `execs_per_worker` times instead of spawning
    /// `target` (which is then unused): the hot method's rounds.
    pub trigger: Option<Trigger>,
}

impl StormSpec {
    /// A validated spec.
    pub fn new(
        workers: u32,
        execs_per_worker: u64,
        target: Target,
        spawn: SpawnMethod,
        timeout: Duration,
    ) -> Result<StormSpec, StormError> {
        let spec = StormSpec {
            workers,
            execs_per_worker,
            target,
            spawn,
            timeout,
            trigger: None,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The same workers firing `trigger` `calls` times each, in place of
    /// the storm's spawns.
    pub fn fire(&self, trigger: Trigger, calls: u64) -> Result<StormSpec, StormError> {
        let spec = StormSpec {
            execs_per_worker: calls,
            trigger: Some(trigger),
            ..self.clone()
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Tasks each worker has alive at once (see [`Target::tasks_per_worker`]);
    /// a worker firing a trigger spawns nothing.
    pub fn tasks_per_worker(&self) -> u64 {
        match self.trigger {
            Some(_) => 1,
            None => self.target.tasks_per_worker(),
        }
    }

    /// A pids limit for the storm's cgroup: each worker and its one target
    /// (and the target's second thread for `threaded`), with slack for a
    /// target that forks.
    pub fn pids_max(&self) -> u64 {
        self.tasks_per_worker() * u64::from(self.workers) + 16
    }

    pub fn validate(&self) -> Result<(), StormError> {
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(StormError::Workers(self.workers));
        }
        if !(1..=MAX_EXECS_PER_WORKER).contains(&self.execs_per_worker) {
            return Err(StormError::Execs(self.execs_per_worker));
        }
        if self.timeout.is_zero() {
            return Err(StormError::ZeroTimeout);
        }
        if self.trigger.is_none() && !self.target.supports(self.spawn) {
            return Err(StormError::Unsupported {
                target: self.target,
                spawn: self.spawn,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn spec(workers: u32, execs: u64) -> Result<StormSpec, StormError> {
        StormSpec::new(workers, execs, Target::Tiny, SpawnMethod::Fork, SECOND)
    }

    #[test]
    fn workers_and_execs_are_bounded_on_both_sides() {
        assert!(spec(1, 1).is_ok());
        assert!(spec(MAX_WORKERS, MAX_EXECS_PER_WORKER).is_ok());
        assert!(matches!(spec(0, 1), Err(StormError::Workers(0))));
        assert!(matches!(
            spec(MAX_WORKERS + 1, 1),
            Err(StormError::Workers(w)) if w == MAX_WORKERS + 1
        ));
        assert!(matches!(spec(1, 0), Err(StormError::Execs(0))));
        assert!(matches!(
            spec(1, MAX_EXECS_PER_WORKER + 1),
            Err(StormError::Execs(e)) if e == MAX_EXECS_PER_WORKER + 1
        ));
        let err = spec(0, 1).unwrap_err().to_string();
        assert!(
            err.contains(&format!("between 1 and {MAX_WORKERS}, got 0")),
            "{err}"
        );
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let zero = StormSpec::new(1, 1, Target::Tiny, SpawnMethod::Fork, Duration::ZERO);
        assert!(matches!(zero, Err(StormError::ZeroTimeout)));
    }

    #[test]
    fn posix_spawn_refuses_the_targets_that_need_fork() {
        for target in Target::ALL {
            assert!(StormSpec::new(1, 1, target, SpawnMethod::Fork, SECOND).is_ok());
            let spawned = StormSpec::new(1, 1, target, SpawnMethod::PosixSpawn, SECOND);
            match target {
                Target::Fexecve | Target::Threaded => {
                    let Err(err) = spawned else {
                        panic!("{target} accepted with posix_spawn");
                    };
                    assert!(matches!(err, StormError::Unsupported { .. }), "{err:?}");
                    assert!(err.to_string().contains("use the `fork` spawn method"));
                }
                _ => assert!(spawned.is_ok(), "{target}: {spawned:?}"),
            }
        }
    }

    #[test]
    fn validate_checks_a_spec_built_field_by_field() {
        let mut built = spec(4, 10).unwrap();
        built.workers = 0;
        assert!(matches!(built.validate(), Err(StormError::Workers(0))));
    }

    #[test]
    fn pids_max_leaves_room_for_every_task_and_some_slack() {
        assert_eq!(spec(10, 1).unwrap().pids_max(), 2 * 10 + 16);
        let threaded = StormSpec::new(10, 1, Target::Threaded, SpawnMethod::Fork, SECOND);
        assert_eq!(threaded.unwrap().pids_max(), 3 * 10 + 16);
    }

    #[test]
    fn names_parse_back_and_unknown_ones_list_the_choices() {
        for target in Target::ALL {
            assert_eq!(target.to_string().parse::<Target>(), Ok(target));
        }
        for spawn in SpawnMethod::ALL {
            assert_eq!(spawn.to_string().parse::<SpawnMethod>(), Ok(spawn));
        }
        let err = "clone3".parse::<SpawnMethod>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown spawn method `clone3`; choose one of: fork, posix_spawn, vfork"
        );
    }
}
