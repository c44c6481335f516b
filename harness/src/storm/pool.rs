//! Storm workers kept from one storm to the next: forked, and moved into
//! the storm cgroup, once. Joining a cgroup is a migration that waits for an
//! RCU grace period (cgroup_threadgroup_rwsem), 10-20 ms a storm here,
//! which a run of hundreds of short storms would otherwise pay each time.

use std::ffi::c_char;
use std::ptr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::reap::Workers;
use super::worker::{self, ChildStack, Exec, Plan, Progress, Spread};
use super::{
    sys, SpawnMethod, StormError, StormReport, StormSpec, Target, TargetBinary, STARTING_NS, TICK,
};
use crate::cgroup::StormCgroup;

/// How often the harness looks for a worker that died before the start.
const READY_POLL: Duration = Duration::from_millis(10);

/// Workers for the storms of one cgroup. A storm that the workers it holds
/// cannot run (another number of workers, target or spawn method), or that
/// failed or timed out, gets fresh ones. Between storms they wait, idle, in
/// the cgroup; dropping the pool kills and reaps them.
#[derive(Default)]
pub struct WorkerPool {
    crew: Option<Crew>,
}

impl WorkerPool {
    /// Runs `spec` in `cgroup` (always the same one for a pool), calling
    /// `on_tick` about every [`TICK`] while it runs; see
    /// [`super::run_storm`].
    pub fn run(
        &mut self,
        spec: &StormSpec,
        cgroup: &StormCgroup,
        on_tick: &mut dyn FnMut(),
    ) -> Result<StormReport, StormError> {
        spec.validate()?;
        if let Some(pids_max) = cgroup.pids_max() {
            let needed = spec.tasks_per_worker() * u64::from(spec.workers);
            if pids_max < needed {
                return Err(StormError::PidsMaxTooLow {
                    workers: spec.workers,
                    pids_max,
                    needed,
                });
            }
        }
        if !self.crew.as_mut().is_some_and(|crew| crew.serves(spec)) {
            // Its workers go before new ones take their place in the cgroup.
            self.crew = None;
            self.crew = Some(Crew::start(spec, cgroup)?);
        }
        let crew = self.crew.as_mut().expect("a crew was just started");
        let report = crew.storm(spec, cgroup, on_tick);
        // A storm cut short leaves its workers killed, or some in doubt.
        if !report.as_ref().is_ok_and(|r| !r.timed_out) {
            self.crew = None;
        }
        report
    }
}

/// Forked workers, each in the storm cgroup, waiting at the gate between
/// storms.
struct Crew {
    workers: u32,
    /// What they can spawn; `None`: they only fire triggers.
    spawns: Option<(Target, SpawnMethod)>,
    progress: Progress,
    /// Declared after `progress`: its drop kills and reaps the workers
    /// before the mapping they share goes.
    procs: Workers,
    /// When the first storm's start began (forking), until it is taken.
    forked_at: Option<Instant>,
    /// What the workers exec, kept (with its private folder) for their life.
    _target: Option<TargetBinary>,
}

impl Crew {
    /// Forks `spec.workers` workers that can run `spec` and storms like it.
    fn start(spec: &StormSpec, cgroup: &StormCgroup) -> Result<Crew, StormError> {
        let forked_at = Instant::now();
        // Everything that allocates happens here, before the first fork.
        // Workers that fire triggers exec nothing: no target to write.
        let target = match spec.trigger {
            None => Some(TargetBinary::prepare(spec.target)?),
            Some(_) => None,
        };
        let join = cgroup.join_handle()?;
        let progress = Progress::new(spec.workers)?;
        let spread = Spread::of_this_process();
        let argv: [*mut c_char; 2] = [
            target
                .as_ref()
                .map_or(ptr::null_mut(), |t| t.path().as_ptr().cast_mut()),
            ptr::null_mut(),
        ];
        let envp: [*mut c_char; 1] = [ptr::null_mut()];
        // Each worker runs on its own copy of it, made by fork.
        let mut child_stack = ChildStack::new(spec.target, spec.spawn);
        let exec = match (spec.target, target.as_ref().and_then(TargetBinary::fd)) {
            (Target::Fexecve, Some(fd)) => Exec::Execveat(fd),
            (Target::Threaded, _) => Exec::Threaded(child_stack.top()),
            _ => Exec::Execve,
        };
        let plan = Plan {
            path: target
                .as_ref()
                .map_or(ptr::null(), |t| t.exec_path().as_ptr()),
            target_fds: target.as_ref().map_or([-1; 2], TargetBinary::keep_fds),
            exec,
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            method: spec.spawn,
            child_stack: child_stack.top(),
            join: &join,
            gate: progress.gate(),
            spread: &spread,
            // SAFETY: plain getpid syscall.
            parent: unsafe { libc::getpid() },
        };
        let mut procs = Workers::new(spec.workers);
        // Every exec's fork copies its worker's page tables, which are this
        // process's: hand the heap's free pages back first. A harness that
        // once held a large map's keys would otherwise fork them all, each
        // exec.
        // SAFETY: malloc_trim only releases free memory of glibc's arenas.
        unsafe { libc::malloc_trim(0) };
        for (index, slot) in progress.slots().iter().enumerate() {
            // SAFETY: the child runs only worker::run, which is
            // async-signal-safe and never returns.
            match unsafe { libc::fork() } {
                -1 => return Err(sys("fork")(Errno::last())),
                0 => worker::run(&plan, index, slot),
                pid => procs.push(pid),
            }
        }
        Ok(Crew {
            workers: spec.workers,
            spawns: target.is_some().then_some((spec.target, spec.spawn)),
            progress,
            procs,
            forked_at: Some(forked_at),
            _target: target,
        })
    }

    /// Whether these workers can run `spec`, and all still wait for it.
    fn serves(&mut self, spec: &StormSpec) -> bool {
        let can = spec.workers == self.workers
            && (spec.trigger.is_some() || self.spawns == Some((spec.target, spec.spawn)));
        can && self.procs.reap_exited().is_ok()
    }

    fn storm(
        &mut self,
        spec: &StormSpec,
        cgroup: &StormCgroup,
        on_tick: &mut dyn FnMut(),
    ) -> Result<StormReport, StormError> {
        let gate = self.progress.gate();
        // The clock starts once every worker waits at the gate: a new
        // worker's fork and cgroup join are the harness's, not the storm's.
        // A worker that could not join exits, and says why.
        let waiting_since = Instant::now();
        let ready_by = waiting_since + spec.timeout;
        loop {
            let ready = gate.ready(READY_POLL);
            if ready >= self.workers {
                break;
            }
            self.procs.reap_exited()?;
            if Instant::now() >= ready_by {
                return Err(StormError::NotReady {
                    ready,
                    workers: self.workers,
                    timeout: spec.timeout,
                });
            }
        }
        let start = Instant::now();
        let starting = start - self.forked_at.take().unwrap_or(waiting_since);
        let starting = u64::try_from(starting.as_nanos()).unwrap_or(u64::MAX);
        STARTING_NS.fetch_add(starting, Ordering::Relaxed);
        gate.open(spec.execs_per_worker, spec.trigger);

        let deadline = start + spec.timeout;
        let mut next_tick = start + TICK;
        let timed_out = loop {
            let now = Instant::now();
            if now >= deadline {
                break true;
            }
            if now >= next_tick {
                on_tick();
                next_tick += TICK;
                // A slow on_tick skips ticks rather than running back to back.
                if next_tick <= now {
                    next_tick = now + TICK;
                }
                continue;
            }
            // Every worker waits at the gate again: the storm is over.
            if gate.ready(next_tick.min(deadline) - now) >= self.workers {
                break false;
            }
            if let Err(e) = self.procs.reap_exited() {
                self.kill(cgroup);
                return Err(e);
            }
        };
        let wall = start.elapsed();

        let (issued, succeeded, failed) = self.progress.totals();
        let [user, sys] = if timed_out {
            // Killed workers never finished: what each had spent when
            // reaped, less what it had when the storm started.
            let at_death = self.kill(cgroup);
            self.progress
                .slots()
                .iter()
                .zip(at_death)
                .fold([0, 0], |[user, sys], (slot, died)| {
                    let [u0, s0] = slot.cpu_start();
                    let [u1, s1] = died.unwrap_or([u0, s0]);
                    [user + u1.saturating_sub(u0), sys + s1.saturating_sub(s0)]
                })
        } else {
            self.progress.cpu_spent()
        };
        Ok(StormReport {
            issued,
            succeeded,
            failed,
            wall,
            cpu_user: Duration::from_micros(user),
            cpu_sys: Duration::from_micros(sys),
            timed_out,
        })
    }

    /// SIGKILLs the workers and everything in the cgroup (the targets the
    /// workers' deaths orphan: init reaps them), then reaps the workers;
    /// returns what [`Workers::kill_and_reap`] does.
    fn kill(&mut self, cgroup: &StormCgroup) -> Vec<Option<worker::CpuMicros>> {
        let at_death = self.procs.kill_and_reap();
        cgroup.kill_all();
        at_death
    }
}
