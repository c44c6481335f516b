//! Storms on the real kernel (run as root): counts, perf and procfs oracles,
//! timeouts and cgroup cleanup. Each test makes its own cgroup, so they may
//! run in parallel.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bpfstorm::cgroup::{self, StormCgroup};
use bpfstorm::oracle::{PerfTracepoint, SystemSnapshot};
use bpfstorm::storm::{
    run_storm, SpawnMethod, StormError, StormReport, StormSpec, Target, Trigger, WorkerPool,
};

const TIMEOUT: Duration = Duration::from_secs(120);

fn procs(cgroup: &Path) -> String {
    fs::read_to_string(cgroup.join("cgroup.procs")).expect("read cgroup.procs")
}

/// What a storm should report and what the perf oracles scoped to its
/// cgroup should count, in execs.
#[derive(Debug, Clone, Copy)]
struct Expect {
    succeeded: u64,
    failed: u64,
    sys_enter_execve: u64,
    sys_enter_execveat: u64,
    sched_process_exec: u64,
    /// Tasks the storm's workers created: targets and, for `threaded`, their
    /// second threads (sched_process_fork fires for threads too).
    sched_process_fork: u64,
}

/// Runs `workers` x `execs` of `target` and checks the storm's own counts and
/// the perf oracles scoped to its cgroup against `expect`.
fn checked_storm(target: Target, spawn: SpawnMethod, workers: u32, execs: u64, expect: Expect) {
    let spec = StormSpec::new(workers, execs, target, spawn, TIMEOUT).expect("valid spec");
    let cg = StormCgroup::create(spec.pids_max()).expect("create cgroup");
    let execve = PerfTracepoint::sys_enter_execve(&cg).expect("perf sys_enter_execve");
    let execveat = PerfTracepoint::open("syscalls", "sys_enter_execveat", &cg)
        .expect("perf sys_enter_execveat");
    let exec = PerfTracepoint::sched_process_exec(&cg).expect("perf sched_process_exec");
    let fork = PerfTracepoint::open("sched", "sched_process_fork", &cg).expect("perf fork");
    let execve_all = PerfTracepoint::sys_enter_execve(None).expect("perf sys_enter_execve, all");
    let before = SystemSnapshot::take().expect("procfs snapshot");

    let report = run_storm(&spec, &cg, &mut || {}).expect("storm");

    let system = SystemSnapshot::take()
        .expect("procfs snapshot")
        .since(&before);
    let total = u64::from(workers) * execs;
    let counts = [
        execve.read().expect("read perf"),
        execveat.read().expect("read perf"),
        exec.read().expect("read perf"),
        fork.read().expect("read perf"),
    ];
    eprintln!(
        "{target} {spawn} {workers}x{execs}: issued {} succeeded {} failed {}; \
         sys_enter_execve {} sys_enter_execveat {} sched_process_exec {} \
         sched_process_fork {}; \
         {:.0} execs/s, wall {:?}, cpu user {:?} sys {:?}",
        report.issued,
        report.succeeded,
        report.failed,
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        report.execs_per_sec(),
        report.wall,
        report.cpu_user,
        report.cpu_sys
    );
    assert!(!report.timed_out);
    assert_eq!(report.issued, total);
    assert_eq!(report.succeeded, expect.succeeded, "succeeded");
    assert_eq!(report.failed, expect.failed, "failed");
    assert!(report.execs_per_sec() > 0.0);
    assert_eq!(counts[0], expect.sys_enter_execve, "sys_enter_execve");
    assert_eq!(counts[1], expect.sys_enter_execveat, "sys_enter_execveat");
    assert_eq!(counts[2], expect.sched_process_exec, "sched_process_exec");
    assert_eq!(counts[3], expect.sched_process_fork, "sched_process_fork");
    assert!(execve_all.read().expect("read perf") >= expect.sys_enter_execve);
    // Every target and every worker is a fork; other processes add more.
    assert!(system.forks >= total + u64::from(workers), "{system:?}");
    assert_eq!(procs(cg.path()), "", "storm left tasks in its cgroup");
    cg.remove().expect("remove cgroup");
}

/// A storm of a target whose every execve succeeds.
fn exact_storm(target: Target, spawn: SpawnMethod, workers: u32, execs: u64) {
    let total = u64::from(workers) * execs;
    let expect = Expect {
        succeeded: total,
        failed: 0,
        sys_enter_execve: total,
        sys_enter_execveat: 0,
        sched_process_exec: total,
        // `threaded` targets each start a second thread before they exec.
        sched_process_fork: total * if target == Target::Threaded { 2 } else { 1 },
    };
    checked_storm(target, spawn, workers, execs, expect);
}

/// A storm of a target whose every execve fails: attempts, no exec.
fn failing_storm(target: Target, spawn: SpawnMethod, workers: u32, execs: u64) {
    let total = u64::from(workers) * execs;
    let expect = Expect {
        succeeded: 0,
        failed: total,
        sys_enter_execve: total,
        sys_enter_execveat: 0,
        sched_process_exec: 0,
        sched_process_fork: total,
    };
    checked_storm(target, spawn, workers, execs, expect);
}

#[test]
fn tiny_fork_storm_counts_exactly() {
    exact_storm(Target::Tiny, SpawnMethod::Fork, 2, 2000);
}

#[test]
fn tiny_posix_spawn_storm_counts_exactly() {
    exact_storm(Target::Tiny, SpawnMethod::PosixSpawn, 2, 2000);
}

#[test]
fn tiny_vfork_storm_counts_exactly() {
    exact_storm(Target::Tiny, SpawnMethod::Vfork, 2, 2000);
}

#[test]
fn bin_true_storms_count_exactly() {
    exact_storm(Target::BinTrue, SpawnMethod::Fork, 2, 100);
    exact_storm(Target::BinTrue, SpawnMethod::PosixSpawn, 2, 100);
    exact_storm(Target::BinTrue, SpawnMethod::Vfork, 2, 100);
}

#[test]
fn script_storms_exec_once_per_iteration() {
    // The script and its interpreter are two binfmt passes but one execve
    // and one sched_process_exec.
    assert!(Target::Script.expect_success());
    assert_eq!(Target::Script.syscall(), "execve");
    exact_storm(Target::Script, SpawnMethod::Fork, 2, 200);
    exact_storm(Target::Script, SpawnMethod::PosixSpawn, 2, 200);
    exact_storm(Target::Script, SpawnMethod::Vfork, 2, 200);
}

#[test]
fn missing_target_storms_fail_every_execve() {
    assert!(!Target::Missing.expect_success());
    assert_eq!(Target::Missing.syscall(), "execve");
    failing_storm(Target::Missing, SpawnMethod::Fork, 2, 200);
    failing_storm(Target::Missing, SpawnMethod::PosixSpawn, 2, 200);
    failing_storm(Target::Missing, SpawnMethod::Vfork, 2, 200);
}

#[test]
fn not_executable_target_storms_fail_every_execve() {
    assert!(!Target::NotExecutable.expect_success());
    assert_eq!(Target::NotExecutable.syscall(), "execve");
    failing_storm(Target::NotExecutable, SpawnMethod::Fork, 2, 200);
    failing_storm(Target::NotExecutable, SpawnMethod::PosixSpawn, 2, 200);
    failing_storm(Target::NotExecutable, SpawnMethod::Vfork, 2, 200);
}

#[test]
fn fexecve_storm_calls_execveat_not_execve() {
    assert!(Target::Fexecve.expect_success());
    assert_eq!(Target::Fexecve.syscall(), "execveat");
    let expect = Expect {
        succeeded: 400,
        failed: 0,
        sys_enter_execve: 0,
        sys_enter_execveat: 400,
        sched_process_exec: 400,
        sched_process_fork: 400,
    };
    checked_storm(Target::Fexecve, SpawnMethod::Fork, 2, 200, expect);
}

#[test]
fn threaded_storm_execs_from_two_threads() {
    assert!(Target::Threaded.expect_success());
    assert_eq!(Target::Threaded.syscall(), "execve");
    exact_storm(Target::Threaded, SpawnMethod::Fork, 2, 200);
}

#[test]
fn posix_spawn_and_vfork_are_refused_for_fork_only_targets() {
    for spawn in [SpawnMethod::PosixSpawn, SpawnMethod::Vfork] {
        for target in [Target::Fexecve, Target::Threaded] {
            assert!(!target.supports(spawn));
            let err = StormSpec::new(1, 1, target, spawn, TIMEOUT).unwrap_err();
            match &err {
                StormError::Unsupported {
                    target: t,
                    spawn: s,
                } => assert_eq!((*t, *s), (target, spawn)),
                other => panic!("expected Unsupported, got {other:?}"),
            }
            let message = err.to_string();
            assert!(message.contains(target.name()), "{message}");
            assert!(message.contains("fork"), "{message}");
        }
    }
    for target in Target::ALL {
        assert!(target.supports(SpawnMethod::Fork));
    }

    // run_storm refuses a spec built by hand too, before touching anything.
    let cg = StormCgroup::create(40).expect("create cgroup");
    let bad = StormSpec {
        workers: 1,
        execs_per_worker: 1,
        target: Target::Fexecve,
        spawn: SpawnMethod::PosixSpawn,
        timeout: TIMEOUT,
        trigger: None,
    };
    assert!(matches!(
        run_storm(&bad, &cg, &mut || {}),
        Err(StormError::Unsupported { .. })
    ));
}

#[test]
fn threaded_target_needs_room_for_its_second_thread() {
    let spec = |target| StormSpec::new(20, 1, target, SpawnMethod::Fork, TIMEOUT).unwrap();
    assert_eq!(spec(Target::Tiny).pids_max(), 56);
    assert_eq!(spec(Target::Threaded).pids_max(), 76);
    // 40 tasks are enough for 20 workers of `tiny`, not of `threaded`.
    let cg = StormCgroup::create(40).expect("create cgroup");
    assert!(matches!(
        run_storm(&spec(Target::Threaded), &cg, &mut || {}),
        Err(StormError::PidsMaxTooLow {
            pids_max: 40,
            needed: 60,
            ..
        })
    ));
}

#[test]
fn timed_out_storm_is_killed_and_cleaned_up() {
    let spec = StormSpec::new(
        1,
        10_000_000,
        Target::Tiny,
        SpawnMethod::Fork,
        Duration::from_millis(300),
    )
    .expect("valid spec");
    let cg = StormCgroup::create(spec.pids_max()).expect("create cgroup");
    let path = cg.path().to_owned();
    let execve = PerfTracepoint::sys_enter_execve(&cg).expect("perf sys_enter_execve");
    let exec = PerfTracepoint::sched_process_exec(&cg).expect("perf sched_process_exec");
    let mut ticks = 0;

    let report = run_storm(&spec, &cg, &mut || ticks += 1).expect("storm");

    assert!(report.timed_out);
    assert!(report.wall >= Duration::from_millis(300), "{report:?}");
    assert!(report.wall < Duration::from_secs(5), "{report:?}");
    assert!(ticks >= 3, "on_tick ran {ticks} times in {:?}", report.wall);
    // The killed worker never reported, but its shared counts say what it
    // did: every exec the kernel saw, plus at most the one it was starting.
    let (execve, exec) = (execve.read().expect("perf"), exec.read().expect("perf"));
    eprintln!("timed out: {report:?}; sys_enter_execve {execve}, sched_process_exec {exec}");
    assert!(report.issued > 0, "{report:?}");
    assert!(
        execve <= report.issued && report.issued <= execve + 1,
        "{report:?} vs {execve}"
    );
    let finished = report.succeeded + report.failed;
    assert!(
        finished <= report.issued && report.issued <= finished + 1,
        "{report:?}"
    );
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(
        report.succeeded <= exec && exec <= report.succeeded + 1,
        "{report:?} vs {exec}"
    );
    assert_eq!(procs(&path), "", "timed-out storm left tasks in its cgroup");
    drop(cg);
    assert!(!path.exists(), "{} left behind", path.display());
}

#[test]
fn storm_killed_from_outside_is_an_error_and_leaves_nothing() {
    for workers in [1, 2] {
        let spec = StormSpec::new(
            workers,
            10_000_000,
            Target::Tiny,
            SpawnMethod::Fork,
            TIMEOUT,
        )
        .expect("valid spec");
        let cg = StormCgroup::create(spec.pids_max()).expect("create cgroup");

        // What the CLI does on Ctrl-C.
        let result = run_storm(&spec, &cg, &mut || cg.kill_all());

        match result {
            Err(StormError::Worker { status, .. }) => assert!(status.contains("SIGKILL")),
            other => panic!("expected a killed worker, got {other:?}"),
        }
        assert_eq!(
            procs(cg.path()),
            "",
            "killed storm left tasks in its cgroup"
        );
    }
}

#[test]
fn cgroup_create_and_drop_leave_nothing() {
    let cg = StormCgroup::create(40).expect("create cgroup");
    let path = cg.path().to_owned();
    assert!(path.is_dir());
    assert!(path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(&format!("bpfstorm-{}-", std::process::id()))));
    assert_eq!(
        path.parent(),
        Some(cgroup::v2_mount().expect("v2").as_path())
    );
    assert_eq!(
        cg.id(),
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap())
    );
    assert_eq!(cg.pids_max(), Some(40));
    assert!(cgroup::owned_by(std::process::id()).contains(&path));

    let second = StormCgroup::create(40).expect("create second cgroup");
    assert_ne!(second.path(), path);
    assert_ne!(second.id(), cg.id());

    // A child joined through the fds moves in; drop kills it.
    let join = cg.join_handle().expect("join fds");
    let mut child = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let mut pid = child.id().to_string();
    pid.push('\n');
    fs::write(path.join("cgroup.procs"), &pid).expect("move sleep in");
    assert_eq!(procs(&path), pid);
    drop(join);

    cg.kill_all();
    let status = child.wait().expect("wait sleep");
    assert!(!status.success());
    drop(cg);
    drop(second);
    assert!(!path.exists(), "{} left behind", path.display());
    assert!(!cgroup::owned_by(std::process::id()).contains(&path));
}

#[test]
fn sweep_removes_cgroups_of_dead_processes() {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("wait true");
    let stale = cgroup::v2_mount()
        .expect("v2")
        .join(format!("bpfstorm-{dead}-0"));
    fs::create_dir(&stale).expect("create stale cgroup");
    let live = StormCgroup::create(40).expect("create cgroup");

    let removed = StormCgroup::sweep_stale().expect("sweep");

    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!stale.exists());
    assert!(live.path().exists(), "sweep removed a live cgroup");
}

#[test]
fn invalid_specs_are_refused() {
    let spec =
        |workers, execs| StormSpec::new(workers, execs, Target::Tiny, SpawnMethod::Fork, TIMEOUT);
    assert!(matches!(spec(0, 10), Err(StormError::Workers(0))));
    assert!(matches!(spec(1025, 10), Err(StormError::Workers(1025))));
    assert!(matches!(spec(1, 0), Err(StormError::Execs(0))));
    assert!(matches!(
        spec(1, 10_000_001),
        Err(StormError::Execs(10_000_001))
    ));
    assert!(matches!(
        StormSpec::new(1, 1, Target::Tiny, SpawnMethod::Fork, Duration::ZERO),
        Err(StormError::ZeroTimeout)
    ));

    // run_storm checks a spec built by hand too, before touching anything.
    let cg = StormCgroup::create(40).expect("create cgroup");
    let bad = StormSpec {
        workers: 0,
        execs_per_worker: 1,
        target: Target::Tiny,
        spawn: SpawnMethod::Fork,
        timeout: TIMEOUT,
        trigger: None,
    };
    assert!(matches!(
        run_storm(&bad, &cg, &mut || {}),
        Err(StormError::Workers(0))
    ));
    let too_many = StormSpec { workers: 30, ..bad };
    assert!(matches!(
        run_storm(&too_many, &cg, &mut || {}),
        Err(StormError::PidsMaxTooLow {
            pids_max: 40,
            needed: 60,
            ..
        })
    ));
}

#[test]
fn names_parse_and_print() {
    assert_eq!("tiny".parse::<Target>(), Ok(Target::Tiny));
    assert_eq!("true".parse::<Target>(), Ok(Target::BinTrue));
    for target in Target::ALL {
        assert_eq!(target.to_string().parse::<Target>(), Ok(target));
    }
    assert_eq!("noexec".parse::<Target>(), Ok(Target::NotExecutable));
    assert_eq!(
        "posix_spawn".parse::<SpawnMethod>(),
        Ok(SpawnMethod::PosixSpawn)
    );
    assert_eq!(SpawnMethod::Fork.to_string(), "fork");
    let err = "false".parse::<Target>().unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown target `false`; choose one of: \
         tiny, true, script, missing, noexec, fexecve, threaded"
    );
}

/// The pids in `cgroup`, sorted.
fn pids(cgroup: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = procs(cgroup)
        .lines()
        .map(|l| l.parse().expect("a pid"))
        .collect();
    pids.sort_unstable();
    pids
}

#[test]
fn a_pool_keeps_its_workers_and_counts_each_storm_on_its_own() {
    let spec = |execs| {
        StormSpec::new(2, execs, Target::Tiny, SpawnMethod::Fork, TIMEOUT).expect("valid spec")
    };
    let cg = StormCgroup::create(spec(1).pids_max()).expect("create cgroup");
    let exec = PerfTracepoint::sched_process_exec(&cg).expect("perf sched_process_exec");
    let fire = PerfTracepoint::open("syscalls", "sys_enter_execveat", &cg).expect("perf");
    let mut pool = WorkerPool::default();

    let first = pool.run(&spec(300), &cg, &mut || {}).expect("storm");
    let workers = pids(cg.path());
    assert_eq!(workers.len(), 2, "idle workers wait in the cgroup");
    assert_eq!((first.issued, first.succeeded), (600, 600), "{first:?}");
    assert_eq!(exec.read().expect("perf"), 600);

    // The same workers; the counts and CPU time are the second storm's alone.
    let second = pool.run(&spec(100), &cg, &mut || {}).expect("storm");
    assert_eq!((second.issued, second.succeeded), (200, 200), "{second:?}");
    assert_eq!(exec.read().expect("perf"), 800);
    assert_eq!(
        pids(cg.path()),
        workers,
        "no new workers for a storm like the last"
    );
    let cpu = |r: &StormReport| r.cpu_user + r.cpu_sys;
    assert!(cpu(&second) > Duration::ZERO, "{second:?}");
    assert!(cpu(&second) < cpu(&first), "{first:?} then {second:?}");

    // Spawning workers fire triggers too, the same ones.
    let calls = spec(1).fire(Trigger::Execveat, 1_000).expect("valid spec");
    let fired = pool.run(&calls, &cg, &mut || {}).expect("fire storm");
    assert_eq!((fired.issued, fired.failed), (2_000, 2_000), "{fired:?}");
    assert_eq!(fire.read().expect("perf"), 2_000);
    assert_eq!(pids(cg.path()), workers);

    // Another spawn method needs other workers; the old ones are gone.
    let vfork = StormSpec::new(2, 50, Target::Tiny, SpawnMethod::Vfork, TIMEOUT).expect("spec");
    let report = pool.run(&vfork, &cg, &mut || {}).expect("storm");
    assert_eq!(report.succeeded, 100, "{report:?}");
    let replaced = pids(cg.path());
    assert_eq!(replaced.len(), 2);
    assert!(
        replaced.iter().all(|pid| !workers.contains(pid)),
        "{replaced:?}"
    );

    drop(pool);
    assert_eq!(procs(cg.path()), "", "a dropped pool left its workers");
}

#[test]
fn a_pool_replaces_workers_killed_between_storms() {
    let spec = StormSpec::new(2, 20, Target::Tiny, SpawnMethod::Fork, TIMEOUT).expect("spec");
    let cg = StormCgroup::create(spec.pids_max()).expect("create cgroup");
    let mut pool = WorkerPool::default();
    pool.run(&spec, &cg, &mut || {}).expect("storm");
    let workers = pids(cg.path());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(workers[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill a worker");
    // SIGKILL lands asynchronously; a worker that dies once its storm has
    // begun fails that storm (see storm_killed_from_outside...).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pids(cg.path()).contains(&workers[0]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the killed worker lives on"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let report = pool
        .run(&spec, &cg, &mut || {})
        .expect("storm with fresh workers");
    assert_eq!(report.succeeded, 40, "{report:?}");
    let replaced = pids(cg.path());
    assert!(!replaced.contains(&workers[0]), "{replaced:?}");
    assert_eq!(replaced.len(), 2);
}

#[test]
fn a_pool_whose_storm_timed_out_starts_afresh() {
    let endless = StormSpec::new(
        1,
        10_000_000,
        Target::Tiny,
        SpawnMethod::Fork,
        Duration::from_millis(200),
    )
    .expect("spec");
    let cg = StormCgroup::create(endless.pids_max()).expect("create cgroup");
    let mut pool = WorkerPool::default();
    let report = pool.run(&endless, &cg, &mut || {}).expect("storm");
    assert!(report.timed_out, "{report:?}");
    assert_eq!(procs(cg.path()), "", "a timed-out storm left its workers");
    let short = StormSpec {
        execs_per_worker: 10,
        timeout: TIMEOUT,
        ..endless
    };
    let report = pool.run(&short, &cg, &mut || {}).expect("storm");
    assert_eq!((report.succeeded, report.timed_out), (10, false));
}

/// The stats-bias calibration's empty program shares the counters' hook
/// while other runs' perf oracles count on it: it must pass every event on.
#[test]
fn the_empty_reference_program_hides_no_exec_from_perf() {
    let spec = StormSpec::new(2, 200, Target::Tiny, SpawnMethod::Fork, TIMEOUT).expect("spec");
    let cg = StormCgroup::create(spec.pids_max()).expect("create cgroup");
    let execve = PerfTracepoint::sys_enter_execve(&cg).expect("perf sys_enter_execve");
    let empty = bpfstorm::hot::bias::EmptyProgram::attach("execve").expect("empty program");
    let report = run_storm(&spec, &cg, &mut || {}).expect("storm");
    drop(empty);
    assert_eq!(report.succeeded, 400, "{report:?}");
    assert_eq!(execve.read().expect("perf"), 400);
}

#[test]
fn a_pool_given_another_cgroup_storms_there_with_workers_of_its_own() {
    let spec = StormSpec::new(2, 20, Target::Tiny, SpawnMethod::Fork, TIMEOUT).expect("spec");
    let first = StormCgroup::create(spec.pids_max()).expect("create cgroup");
    let second = StormCgroup::create(spec.pids_max()).expect("create cgroup");
    let exec = PerfTracepoint::sched_process_exec(&second).expect("perf sched_process_exec");
    let mut pool = WorkerPool::default();
    pool.run(&spec, &first, &mut || {}).expect("storm");
    let report = pool.run(&spec, &second, &mut || {}).expect("storm");
    assert_eq!(report.succeeded, 40, "{report:?}");
    assert_eq!(
        exec.read().expect("perf"),
        40,
        "the execs ran in the cgroup given"
    );
    assert_eq!(
        procs(first.path()),
        "",
        "the first cgroup's workers are gone"
    );
    assert_eq!(pids(second.path()).len(), 2);
}
