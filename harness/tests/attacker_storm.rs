//! Storm targets and their folders against a local attacker: another user
//! (uid 65534, through `setpriv`) who can write the temp folder bpfstorm, as
//! root, puts its targets in. Root must never run what that user plants,
//! and the attacker's folders must neither stop a storm nor be deleted as
//! leftovers of ours.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use bpfstorm::cgroup::StormCgroup;
use bpfstorm::export::read::{newest_run, read_run};
use bpfstorm::secure_fs::random_hex;
use bpfstorm::storm::{run_storm, sweep_stale_dirs, SpawnMethod, StormSpec, Target};
use common::{command, text};

mod common;

const NOBODY: u32 = 65534;

/// `sh -c script` as uid/gid 65534 with no supplementary groups.
fn as_nobody(script: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        "sh",
        "-c",
        script,
    ]);
    cmd
}

fn run_as_nobody(script: &str, env: &[(&str, &Path)]) {
    let mut cmd = as_nobody(script);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running setpriv");
    assert!(
        out.status.success(),
        "as uid {NOBODY}: {script}: {}",
        text(&out.stderr)
    );
}

/// Removes what the attacker (and the test) made, whatever happens.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// A folder the attacker made in /tmp: theirs, mode 0777.
fn attacker_folder() -> (PathBuf, Cleanup) {
    let evil = PathBuf::from(format!("/tmp/bpfstorm-attack-{}", random_hex(8)));
    run_as_nobody(r#"mkdir -m 777 "$E""#, &[("E", &evil)]);
    let meta = fs::metadata(&evil).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (NOBODY, 0o777));
    let cleanup = Cleanup(vec![evil.clone()]);
    (evil, cleanup)
}

/// The attacker: loops until `$E/stop`, watching `$T` for bpfstorm's
/// folders and swapping each for one of its own holding `tiny`, `script`,
/// `missing`, `noexec` and `true`, all `#!/bin/sh` scripts that write
/// `$E/marker` (written by whoever runs them: root, if bpfstorm does). In
/// a folder it can write (`$T` = `$E`) it renames bpfstorm's folder away;
/// under a root folder of its own folder (`$T` = `$E/sub`) it swaps that
/// folder. Counts its swaps in `$E/swaps`.
const ATTACKER: &str = r#"
set -u
mkdir "$E/tpl"
for f in tiny script missing noexec true; do
    printf '#!/bin/sh\necho pwned > %s/marker\n' "$E" > "$E/tpl/$f"
    chmod 755 "$E/tpl/$f"
done
n=0
: > "$E/ready"
while [ ! -e "$E/stop" ]; do
    for d in "$T"/bpfstorm-*; do
        [ -d "$d" ] && [ ! -O "$d" ] || continue
        n=$((n + 1))
        name=${d##*/}
        if [ "$T" = "$E" ]; then
            cp -r "$E/tpl" "$E/plant-$n" && mv "$d" "$E/taken-$n" && mv "$E/plant-$n" "$d" &&
                echo "$name" >> "$E/swaps"
        else
            mkdir "$E/fake-$n" && cp -r "$E/tpl" "$E/fake-$n/$name" &&
                mv "$T" "$E/old-$n" && mv "$E/fake-$n" "$T" && echo "$name" >> "$E/swaps"
        fi
    done
done
"#;

struct Attacker {
    evil: PathBuf,
    child: Child,
}

impl Attacker {
    /// Starts the attacker on `watch` and waits until it is ready.
    fn start(evil: &Path, watch: &Path) -> Attacker {
        let child = as_nobody(ATTACKER)
            .env("E", evil)
            .env("T", watch)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the attacker");
        let attacker = Attacker {
            evil: evil.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !evil.join("ready").exists() {
            assert!(Instant::now() < deadline, "the attacker did not start");
            sleep(Duration::from_millis(10));
        }
        attacker
    }

    /// Stops it; returns the folders it swapped.
    fn stop(mut self) -> Vec<String> {
        self.halt();
        fs::read_to_string(self.evil.join("swaps"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn halt(&mut self) {
        let _ = fs::write(self.evil.join("stop"), "");
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            sleep(Duration::from_millis(10));
        }
        let _ = self.child.wait();
    }
}

impl Drop for Attacker {
    /// A failed assertion must not leave the attacker looping.
    fn drop(&mut self) {
        self.halt();
    }
}

/// `bpfstorm run` of one cell (the storm and its probe-free twin) of
/// `target` with TMPDIR set to `tmpdir`; checks the row says what the
/// target does, no more (the error says what differs).
fn storm_with_tmpdir(tmpdir: &Path, target: Target, spawn: SpawnMethod) -> Result<(), String> {
    let results = tempfile::tempdir().unwrap();
    let (workers, execs) = (2u64, 1500u64);
    let out = command(&[
        "run",
        "--method",
        "storm",
        "--backend",
        "libbpf",
        "--attach",
        "tp_sys_enter_execve",
        "--map",
        "array",
        "--update",
        "atomic",
        "--workers",
        &workers.to_string(),
        "--execs",
        &execs.to_string(),
        "--repeat",
        "1",
        "--target",
        target.name(),
        "--spawn",
        spawn.name(),
        "--results-dir",
        results.path().to_str().unwrap(),
    ])
    .env("TMPDIR", tmpdir)
    .output()
    .expect("running bpfstorm");
    let what = format!("{target} {spawn} with TMPDIR={}", tmpdir.display());
    if !out.status.success() {
        return Err(format!("{what}: {}", text(&out.stderr)));
    }
    let csv = newest_run(results.path()).ok_or(format!("{what}: no CSV"))?;
    let rows = read_run(&csv).map_err(|e| format!("{what}: {e}"))?;
    let [row] = rows.as_slice() else {
        return Err(format!("{what}: expected one row, got {rows:?}"));
    };
    let total = workers * execs;
    let (succeeded, failed) = if target.expect_success() {
        (total, 0)
    } else {
        (0, total)
    };
    let got = (
        row.status.name(),
        row.issued,
        row.succeeded,
        row.failed,
        row.exact,
    );
    let want = ("ok", Some(total), Some(succeeded), Some(failed), Some(true));
    if got != want {
        return Err(format!(
            "{what}: (status, issued, succeeded, failed, exact) {got:?}, not {want:?} \
             (counted {:?}, expected {:?} by {})",
            row.counted, row.expected, row.expected_oracle
        ));
    }
    Ok(())
}

/// TMPDIR is the attacker's own folder (0777, theirs): bpfstorm must not
/// put targets there (it falls back to /var/tmp), so the swaps the attacker
/// is waiting to make never happen and root never runs its scripts.
#[test]
fn a_tmpdir_another_user_owns_is_never_used_for_targets() {
    let (evil, _cleanup) = attacker_folder();
    for target in [Target::Tiny, Target::Script] {
        let attacker = Attacker::start(&evil, &evil);
        let storm = storm_with_tmpdir(&evil, target, SpawnMethod::Fork);
        let swaps = attacker.stop();
        assert!(
            !evil.join("marker").exists(),
            "{target}: root ran the attacker's script (swaps: {swaps:?}; {storm:?})"
        );
        assert!(
            swaps.is_empty(),
            "targets were put in {}: {swaps:?}",
            evil.display()
        );
        storm.unwrap();
        let _ = fs::remove_dir_all(evil.join("tpl"));
        let _ = fs::remove_file(evil.join("ready"));
        let _ = fs::remove_file(evil.join("stop"));
    }
}

/// TMPDIR is root's own 0755 folder, but inside the attacker's folder, so
/// the attacker can swap it (with everything under it) while the storm
/// runs. Every target must still run what bpfstorm wrote: it is exec'd
/// through fds opened before the swap (the script's interpreter too, and
/// `missing` stays missing).
#[test]
fn targets_are_exec_through_fds_so_swapping_their_folder_changes_nothing() {
    let cases = [
        (Target::Tiny, SpawnMethod::Fork),
        (Target::Script, SpawnMethod::Fork),
        (Target::Script, SpawnMethod::PosixSpawn),
        (Target::Missing, SpawnMethod::Fork),
        (Target::NotExecutable, SpawnMethod::Fork),
        (Target::Threaded, SpawnMethod::Fork),
    ];
    for (target, spawn) in cases {
        let (evil, _cleanup) = attacker_folder();
        let sub = evil.join("sub");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
        let attacker = Attacker::start(&evil, &sub);
        let storm = storm_with_tmpdir(&sub, target, spawn);
        let swaps = attacker.stop();
        assert!(
            !evil.join("marker").exists(),
            "{target} {spawn}: root ran the attacker's script (swaps: {swaps:?}; {storm:?})"
        );
        storm.unwrap();
        // The attack did happen: the storm's folder was swapped under it.
        assert!(
            swaps.iter().any(|s| s.starts_with("bpfstorm-")),
            "{target} {spawn}: the attacker never saw the storm's folder"
        );
    }
}

/// The attacker pre-creates, in every temp folder, the names bpfstorm used
/// to pick (`bpfstorm-<pid>-<n>`: this process's pid) and names of dead
/// runs, in both the old and the new shape. Storms still run, and the sweep
/// of killed runs' folders deletes none of the attacker's, only root's own.
#[test]
fn pre_created_names_neither_stop_storms_nor_get_swept() {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("wait true");
    let me = std::process::id();
    let bases = [
        std::env::temp_dir(),
        PathBuf::from("/var/tmp"),
        PathBuf::from("/dev/shm"),
    ];
    let mut cleanup = Cleanup(Vec::new());
    let mut attackers = Vec::new();
    let mut ours = Vec::new();
    for base in &bases {
        let script = format!(
            r#"cd "$B" && mkdir -m 777 $(seq -f 'bpfstorm-{me}-%g' 0 999) \
               bpfstorm-{dead}-0 && mkdir -m 700 bpfstorm-target-{dead}-0123456789abcdef"#
        );
        run_as_nobody(&script, &[("B", base)]);
        cleanup
            .0
            .extend((0..1000).map(|n| base.join(format!("bpfstorm-{me}-{n}"))));
        for name in [
            format!("bpfstorm-{dead}-0"),
            format!("bpfstorm-target-{dead}-0123456789abcdef"),
        ] {
            cleanup.0.push(base.join(&name));
            attackers.push(base.join(name));
        }
        // What a killed run of ours leaves: root's, 0700, our name shape.
        let stale = base.join(format!("bpfstorm-target-{dead}-{}", random_hex(8)));
        fs::create_dir(&stale).unwrap();
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o700)).unwrap();
        cleanup.0.push(stale.clone());
        ours.push(stale);
    }

    let swept = sweep_stale_dirs();

    for path in &attackers {
        assert!(
            path.is_dir(),
            "the sweep deleted the attacker's {}",
            path.display()
        );
        assert_eq!(fs::metadata(path).unwrap().uid(), NOBODY);
    }
    for path in &ours {
        assert!(
            swept.contains(path),
            "{} not swept: {swept:?}",
            path.display()
        );
        assert!(!path.exists());
    }

    for (target, spawn) in [
        (Target::Tiny, SpawnMethod::Fork),
        (Target::Script, SpawnMethod::PosixSpawn),
    ] {
        let spec = StormSpec::new(2, 200, target, spawn, Duration::from_secs(120)).unwrap();
        let cg = StormCgroup::create(spec.pids_max()).expect("create cgroup");
        let report = run_storm(&spec, &cg, &mut || {}).expect("storm despite planted names");
        assert_eq!((report.issued, report.succeeded), (400, 400), "{report:?}");
        cg.remove().expect("remove cgroup");
    }
    for path in &attackers {
        assert!(path.is_dir(), "{} deleted", path.display());
    }
}
