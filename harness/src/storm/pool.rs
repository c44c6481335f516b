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

/// Workers for storms, kept between them. A storm in another cgroup, or
/// one that the workers it holds cannot run (another number of workers,
/// target or spawn method), gets fresh ones, and so does the storm after
/// one that failed or timed out. Between storms they wait, idle, in their
/// cgroup; dropping the pool kills and reaps them.
#[derive(Default)]
pub struct WorkerPool {
    crew: Option<Crew>,
}

impl WorkerPool {
    /// Runs `spec` in `cgroup`, calling `on_tick` about every [`TICK`] while
    /// it runs, as [`super::run_storm`] does, but keeps the workers when the
    /// storm went well: they stay in the cgroup, waiting for the next. A
    /// worker killed between storms is replaced; one killed during a storm
    /// fails it ([`StormError::Worker`]), unless the others had all
    /// finished.
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
        // Out of the pool while it storms: a storm cut short (an error, a
        // timeout, a panic in on_tick) leaves workers killed, or in doubt.
        let kept = self.crew.take().and_then(|mut crew| {
            // A crew not kept is gone before new workers take its place.
            crew.serves(spec, cgroup).then_some(crew)
        });
        let mut crew = match kept {
            Some(crew) => crew,
            None => Crew::start(spec, cgroup)?,
        };
        let emptied_on_panic = EmptyOnPanic(cgroup);
        let report = crew.storm(spec, cgroup, on_tick)?;
        drop(emptied_on_panic);
        if !report.timed_out {
            self.crew = Some(crew);
        }
        Ok(report)
    }
}

/// Kills what is left in the cgroup (the targets of workers that die as
/// their crew drops) when a panic unwinds through a storm.
struct EmptyOnPanic<'a>(&'a StormCgroup);

impl Drop for EmptyOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.kill_all();
        }
    }
}

/// Forked workers, each in the storm cgroup, waiting at the gate between
/// storms.
struct Crew {
    /// The id of their cgroup.
    cgroup: u64,
    workers: u32,
    /// What they can spawn; `None`: they only fire triggers.
    spawns: Option<(Target, SpawnMethod)>,
    /// Declared first, so its drop kills and reaps the workers before the
    /// harness unmaps the memory it shares with them.
    procs: Workers,
    progress: Progress,
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
            cgroup: cgroup.id(),
            workers: spec.workers,
            spawns: target.is_some().then_some((spec.target, spec.spawn)),
            progress,
            procs,
            forked_at: Some(forked_at),
            _target: target,
        })
    }

    /// Whether these workers can run `spec` in `cgroup`, and all still wait
    /// for it.
    fn serves(&mut self, spec: &StormSpec, cgroup: &StormCgroup) -> bool {
        let can = cgroup.id() == self.cgroup
            && spec.workers == self.workers
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
        self.progress.open(spec.execs_per_worker, spec.trigger);

        let deadline = start + spec.timeout;
        let mut next_tick = start + TICK;
        let timed_out = loop {
            // Every worker waits at the gate again: the storm is over.
            if gate.arrived() >= self.workers {
                break false;
            }
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
            if gate.ready(next_tick.min(deadline) - now) >= self.workers {
                break false;
            }
            if let Err(e) = self.procs.reap_exited() {
                self.kill(cgroup);
                return Err(e);
            }
        };
        let wall = start.elapsed();

        // Killed workers never finished: their counts are read once they are
        // gone, and their CPU time is what each had when reaped, less what
        // it had when the storm started.
        let at_death = timed_out.then(|| self.kill(cgroup));
        let (issued, succeeded, failed) = self.progress.totals();
        let [user, sys] = if let Some(at_death) = at_death {
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
