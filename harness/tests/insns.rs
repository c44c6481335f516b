//! These are tests of bpfstorm's own BPF programs, so they go through the
//! backends that load them (`backends::LOADERS`); bpftrace writes its own
//! programs (its sizes: backends/bpftrace/tests/smoke.rs).
//!
//! Every loader reports the size of what it loaded, so Rust-made (aya)
//! and clang-made (libbpf, c) programs can be compared strategy by
//! strategy; and every strategy gets a program made for it alone (map,
//! update and filter compiled in), whose size is committed in
//! `results/xlated-insns.md` and checked here, and which uses no map it
//! does not need. What a stream dropped is the program's own count. A
//! backend whose loader library cannot do what a strategy needs refuses it
//! before load, typed; the table says `refused` there, and every test that
//! loads a strategy in every backend checks that refusal instead.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use bpfstorm::backends::{self, LOADERS};
use bpfstorm_common::{
    AttachPoint, Counter, CounterError, Filter, Introspection, MapKind, ProgInsns, Strategy,
    UpdateMode,
};
use libbpf_rs::btf::{types, Btf, TypeId};
use libbpf_rs::libbpf_sys as sys;
use libbpf_rs::{MapCore, MapFlags, MapHandle};

/// The committed table, relative to this crate.
const TABLE: &str = include_str!("../../results/xlated-insns.md");

/// The classic tutorial's program for tp_sys_enter_execve/array/atomic/all
/// (tracepoint, look up key 0 in a 1-entry array, `__sync_fetch_and_add`,
/// return) after the verifier's rewrite, as `bpftool prog dump xlated`
/// shows it on this machine kind: the size bpfstorm's program for the same
/// strategy must not exceed.
const TUTORIAL_XLATED_INSNS: u32 = 18;

/// The strategies of the table: tp_sys_enter_execve, every map x update,
/// filter all and cgroup (a cgroup id no task has; nothing counts), and
/// each that takes keys at 64 keys.
fn table_strategies() -> Vec<Strategy> {
    let attach = AttachPoint::TpSysEnterExecve;
    let mut all = Strategy::all_for(attach, Filter::All);
    all.extend(Strategy::all_for(attach, Filter::Cgroup(u64::MAX - 1)));
    let cpus = bpfstorm_common::count::possible_cpus().unwrap();
    let keyed: Vec<Strategy> = all
        .iter()
        .filter(|s| s.map().takes_keys())
        .map(|s| s.with_keys(64, s.map().entries_for(64, cpus)).unwrap())
        .collect();
    all.extend(keyed);
    all
}

fn open(backend: &str, s: &Strategy) -> Box<dyn Counter> {
    backends::by_name(backend)
        .unwrap()
        .open(s)
        .unwrap_or_else(|e| panic!("{backend} {s}: {e}"))
}

/// Whether `e` is a backend's own refusal of a strategy: typed as
/// unsupported, before anything reached the kernel (no errno).
fn is_refusal(e: &CounterError) -> bool {
    matches!(e, CounterError::Unsupported { errno: None, .. })
}

/// Opens `s` in `backend`, or `None` where the backend refuses it: then the
/// committed table must say `refused` for it, and the refusal must be typed.
/// A strategy the table does not list must load (the table test reports it
/// missing).
fn open_unless_refused(backend: &str, s: &Strategy) -> Option<Box<dyn Counter>> {
    let (_, rows) = committed();
    let refused = rows
        .iter()
        .find(|r| r.strategy == row_name(s))
        .is_some_and(|r| r.cell(backend) == Insns::Refused);
    match backends::by_name(backend).unwrap().open(s) {
        Ok(_) if refused => panic!("{backend} {s}: loads, but the table says refused"),
        Ok(counter) => Some(counter),
        Err(e) if refused => {
            assert!(is_refusal(&e), "{backend} {s}: not a typed refusal: {e:?}");
            None
        }
        Err(e) => panic!("{backend} {s}: {e}"),
    }
}

/// The size of the program `backend` loads for `s`.
fn insns(backend: &str, s: &Strategy) -> ProgInsns {
    let counter = open(backend, s);
    program_insns(backend, s, counter.as_ref())
}

fn program_insns(backend: &str, s: &Strategy, counter: &dyn Counter) -> ProgInsns {
    let insns = Introspection::open(counter.loaded()).and_then(|view| view.prog_insns());
    insns.unwrap_or_else(|e| panic!("{backend} {s}: {e}"))
}

/// What a backend loads for a strategy, as the table writes it: the
/// program's `xlated_insns`, or `refused` (typed, before load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Insns {
    Xlated(u32),
    Refused,
}

impl Insns {
    /// Measured: the size of `backend`'s program for `s`, or its refusal,
    /// which must be typed; any other error fails the test.
    fn of(backend: &str, s: &Strategy) -> Insns {
        match backends::by_name(backend).unwrap().open(s) {
            Ok(counter) => Insns::Xlated(program_insns(backend, s, counter.as_ref()).xlated_insns),
            Err(e) if is_refusal(&e) => {
                println!("{backend} {s} refused: {e}");
                Insns::Refused
            }
            Err(e) => panic!("{backend} {s}: neither loaded nor refused, typed: {e}"),
        }
    }

    fn parse(cell: &str) -> Option<Insns> {
        match cell {
            "refused" => Some(Insns::Refused),
            n => n.parse().ok().map(Insns::Xlated),
        }
    }

    fn xlated(self) -> Option<u32> {
        match self {
            Insns::Xlated(n) => Some(n),
            Insns::Refused => None,
        }
    }

    /// `aya - c`; `None` (the table's `-`) where either refused.
    fn minus(self, other: Insns) -> Option<i64> {
        Some(self.xlated()? as i64 - other.xlated()? as i64)
    }
}

impl std::fmt::Display for Insns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Insns::Xlated(n) => write!(f, "{n}"),
            Insns::Refused => f.write_str("refused"),
        }
    }
}

/// The table's `aya - c`: signed, or `-` where it cannot be computed.
fn difference(d: Option<i64>) -> String {
    d.map_or_else(|| "-".to_string(), |d| format!("{d:+}"))
}

#[test]
fn every_loader_reports_instruction_counts_for_every_strategy() {
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::Cgroup(1)) {
        for name in LOADERS {
            let Some(counter) = open_unless_refused(name, &s) else {
                println!("{s:40} {name:7} refused");
                continue;
            };
            let insns = program_insns(name, &s, counter.as_ref());
            println!(
                "{s:40} {name:7} verified {:3} xlated {:3} jited {:4} B",
                insns.verified_insns, insns.xlated_insns, insns.jited_bytes
            );
            assert!(insns.verified_insns > 0, "{name} {s}: {insns:?}");
            assert!(insns.xlated_insns > 0, "{name} {s}: {insns:?}");
            assert!(insns.jited_bytes > 0, "{name} {s}: {insns:?}");
        }
    }
}

/// One row of the committed table.
#[derive(Debug)]
struct Row {
    strategy: String,
    libbpf: Insns,
    c: Insns,
    aya: Insns,
    /// `None` where the table says `-`.
    aya_minus_c: Option<i64>,
}

impl Row {
    fn cell(&self, backend: &str) -> Insns {
        match backend {
            "libbpf" => self.libbpf,
            "c" => self.c,
            "aya" => self.aya,
            _ => panic!("results/xlated-insns.md has no column for backend {backend}"),
        }
    }
}

/// The kernel the table was measured on (its `Kernel:` line) and its rows.
fn committed() -> (String, Vec<Row>) {
    let kernel = TABLE
        .lines()
        .find_map(|l| l.strip_prefix("Kernel: "))
        .map(|k| k.trim().trim_matches('`').to_string())
        .expect("results/xlated-insns.md names its kernel on a `Kernel: ` line");
    let rows = TABLE
        .lines()
        .filter(|l| l.starts_with("| tp_"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let insns = |i: usize| {
                Insns::parse(cells[i])
                    .unwrap_or_else(|| panic!("neither a number nor `refused` in column {i}: {l}"))
            };
            let aya_minus_c = match cells[4] {
                "-" => None,
                d => Some(
                    d.parse()
                        .unwrap_or_else(|_| panic!("neither a number nor `-` in column 4: {l}")),
                ),
            };
            Row {
                strategy: cells[0].to_string(),
                libbpf: insns(1),
                c: insns(2),
                aya: insns(3),
                aya_minus_c,
            }
        })
        .collect();
    (kernel, rows)
}

/// `6.18` of `6.18.44-fc-v595`.
fn major_minor(release: &str) -> String {
    release.split('.').take(2).collect::<Vec<_>>().join(".")
}

fn running_kernel() -> String {
    nix::sys::utsname::uname()
        .unwrap()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// The table row of a strategy, as written in results/xlated-insns.md.
fn row_name(s: &Strategy) -> String {
    format!(
        "{}/{}/{}/{}{}",
        s.attach(),
        s.map(),
        s.update(),
        s.filter().name(),
        if s.is_keyed() { "/keyed" } else { "" }
    )
}

#[test]
fn xlated_instruction_counts_match_the_committed_table() {
    let (kernel, rows) = committed();
    let here = running_kernel();
    let same_kernel = major_minor(&kernel) == major_minor(&here);
    let mut measured = Vec::new();
    for s in table_strategies() {
        let of = |backend: &str| Insns::of(backend, &s);
        let (libbpf, c, aya) = (of("libbpf"), of("c"), of("aya"));
        measured.push((row_name(&s), libbpf, c, aya));
    }
    // Printed in the table's own format, to paste after a deliberate change.
    println!("| strategy | libbpf | c | aya | aya - c |");
    for (name, libbpf, c, aya) in &measured {
        println!(
            "| {name} | {libbpf} | {c} | {aya} | {} |",
            difference(aya.minus(*c))
        );
    }

    let names: BTreeSet<&str> = measured.iter().map(|m| m.0.as_str()).collect();
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.strategy.as_str()).collect();
    assert_eq!(
        names, listed,
        "the table lists other strategies than measured"
    );
    for (name, libbpf, c, aya) in &measured {
        let row = rows.iter().find(|r| &r.strategy == name).unwrap();
        // One object, one program per strategy: libbpf and c load the very
        // same instructions, where both load it.
        if let (Insns::Xlated(l), Insns::Xlated(c)) = (libbpf, c) {
            assert_eq!(l, c, "{name}: libbpf and c differ");
        }
        if let (Insns::Xlated(l), Insns::Xlated(c)) = (row.libbpf, row.c) {
            assert_eq!(l, c, "{name}: the table's libbpf and c differ");
        }
        assert_eq!(
            row.aya.minus(row.c),
            row.aya_minus_c,
            "{name}: the table's aya - c is not its aya minus its c (`-` where one refused)"
        );
        assert_eq!(
            aya.minus(*c),
            row.aya_minus_c,
            "{name}: aya's difference to c changed"
        );
        // What a backend refuses is its loader library's doing, not the
        // kernel's: the same on every kernel.
        for (backend, now, listed) in [
            ("libbpf", libbpf, row.libbpf),
            ("c", c, row.c),
            ("aya", aya, row.aya),
        ] {
            assert_eq!(
                *now == Insns::Refused,
                listed == Insns::Refused,
                "{name}: {backend} gives {now}, the table says {listed}"
            );
        }
        if same_kernel {
            assert_eq!(
                (*libbpf, *c, *aya),
                (row.libbpf, row.c, row.aya),
                "{name} on {here}"
            );
        }
    }
    if !same_kernel {
        println!(
            "absolute counts not compared: the table is of kernel {kernel}, this is {here} \
             (the verifier's rewrites differ by kernel); libbpf == c and aya - c were checked"
        );
    }
}

#[test]
fn the_tutorial_strategy_costs_no_more_instructions_than_the_tutorials_program() {
    let s = Strategy::new(
        AttachPoint::TpSysEnterExecve,
        MapKind::Array,
        UpdateMode::Atomic,
        Filter::All,
    )
    .unwrap();
    for name in ["libbpf", "c"] {
        let xlated = insns(name, &s).xlated_insns;
        assert!(
            xlated <= TUTORIAL_XLATED_INSNS,
            "{name} {s}: {xlated} instructions, the tutorial's program has {TUTORIAL_XLATED_INSNS}"
        );
    }
}

/// A loaded program's instructions after the verifier's rewrite, as the
/// kernel dumps them (map pointers turned back into map ids), and its first
/// BTF function record.
fn xlated(id: u32) -> (sys::bpf_prog_info, Vec<u64>, sys::bpf_func_info) {
    // SAFETY: plain bpf(BPF_PROG_GET_FD_BY_ID); the fd is owned right away.
    let fd = unsafe { sys::bpf_prog_get_fd_by_id(id) };
    assert!(fd >= 0, "prog {id} is not loaded");
    // SAFETY: the kernel just returned this fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut insns = vec![0u64; 4096];
    let mut func = sys::bpf_func_info::default();
    let mut info = sys::bpf_prog_info {
        xlated_prog_len: (insns.len() * 8) as u32,
        xlated_prog_insns: insns.as_mut_ptr() as u64,
        nr_func_info: 1,
        func_info_rec_size: std::mem::size_of::<sys::bpf_func_info>() as u32,
        func_info: &mut func as *mut sys::bpf_func_info as u64,
        ..Default::default()
    };
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: the kernel writes at most `len` bytes of info, and at most
    // the lengths given of the arrays it points to, which outlive the call.
    let rc = unsafe { sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    assert_eq!(rc, 0, "prog {id}: bpf_prog_get_info_by_fd");
    insns.truncate(info.xlated_prog_len as usize / 8);
    (info, insns, func)
}

/// The program's full name, from its BTF (the kernel keeps 15 characters
/// of a program's name, the BTF the whole of it).
fn btf_name(id: u32, info: &sys::bpf_prog_info, func: &sys::bpf_func_info) -> String {
    assert!(
        info.btf_id > 0 && info.nr_func_info > 0,
        "prog {id} has no BTF"
    );
    let btf = Btf::from_prog_id(id).unwrap();
    let f: types::Func<'_> = btf.type_by_id(TypeId::from(func.type_id)).unwrap();
    f.name().unwrap().to_string_lossy().into_owned()
}

/// The maps the program's instructions load, by id and name: every
/// `ld_imm64` of a map or of a map's value (BPF_PSEUDO_MAP_FD or
/// BPF_PSEUDO_MAP_VALUE, the map's id in `imm`). libbpf names its internal
/// maps `<object>.rodata`, aya `.rodata`: both become `.rodata`. (libbpf
/// also binds `.rodata` to every program it loads, so the program's map
/// list names it even when no instruction uses it.)
fn maps_used(prog_id: u32) -> Vec<(u32, String)> {
    const LD_IMM64: u64 = 0x18;
    const PSEUDO_MAP_FD: u64 = 1;
    const PSEUDO_MAP_VALUE: u64 = 2;
    let (_, insns, _) = xlated(prog_id);
    insns
        .iter()
        .filter(|&&insn| insn & 0xff == LD_IMM64)
        .filter(|&&insn| matches!((insn >> 12) & 0xf, PSEUDO_MAP_FD | PSEUDO_MAP_VALUE))
        .map(|&insn| {
            let id = (insn >> 32) as u32;
            let name = MapHandle::from_map_id(id)
                .unwrap()
                .name()
                .to_string_lossy()
                .into_owned();
            let name = match name.find('.') {
                Some(dot) => name[dot..].to_string(),
                None => name,
            };
            (id, name)
        })
        .collect()
}

/// What a program of strategy `s` may use: its map (for a global, its own
/// `.data.<name>` section), `.rodata` only to read the cgroup id or the
/// number of keys, `.bss` only to count what a stream dropped or a keyed
/// count found no slot for. (The kernel keeps 15 characters of a map's
/// name.)
fn maps_needed(s: &Strategy) -> BTreeSet<String> {
    let map: String = s.map().object_name().chars().take(15).collect();
    let mut maps = BTreeSet::from([map]);
    if s.filter() != Filter::All || s.is_keyed() {
        maps.insert(".rodata".into());
    }
    if s.map().is_stream() || s.is_keyed() {
        maps.insert(".bss".into());
    }
    maps
}

/// Each strategy loads its own program, named after it in every backend,
/// whose instructions use no map it does not need: nothing is left for
/// the verifier to prune, no switch is read from `.rodata` at run time.
#[test]
fn each_strategy_loads_a_program_of_its_own_that_uses_only_what_it_needs() {
    for name in LOADERS {
        for s in table_strategies() {
            let Some(counter) = open_unless_refused(name, &s) else {
                continue;
            };
            let ids = &counter.loaded().progs;
            assert_eq!(ids.len(), 1, "{name} {s}: {ids:?}");
            let (info, _, func) = xlated(ids[0]);
            assert_eq!(
                btf_name(ids[0], &info, &func),
                s.program_name(),
                "{name} {s}"
            );
            let used: BTreeSet<String> = maps_used(ids[0]).into_iter().map(|m| m.1).collect();
            assert_eq!(used, maps_needed(&s), "{name} {s}");
        }
    }
}

/// `dropped` is the program's own count of what the buffer could not take
/// (its `.bss` global), in every backend and update mode; perf's lost
/// records are a separate column. The counter is set from outside, as the
/// program would, and read back.
#[test]
fn every_loader_reports_the_programs_own_dropped_counter() {
    for name in LOADERS {
        for (map, &update) in [MapKind::Ringbuf, MapKind::PerfEventArray]
            .into_iter()
            .flat_map(|map| map.valid_updates().iter().map(move |u| (map, u)))
        {
            let s = Strategy::new(
                AttachPoint::TpSysEnterExecve,
                map,
                update,
                Filter::Cgroup(u64::MAX - 1),
            )
            .unwrap();
            let Some(mut counter) = open_unless_refused(name, &s) else {
                continue;
            };
            let (bss, _) = maps_used(counter.loaded().progs[0])
                .into_iter()
                .find(|m| m.1 == ".bss")
                .unwrap_or_else(|| panic!("{name} {s}: the program uses no .bss"));
            MapHandle::from_map_id(bss)
                .unwrap()
                .update(&0u32.to_ne_bytes(), &7u64.to_ne_bytes(), MapFlags::ANY)
                .unwrap();
            let r = counter.read().unwrap();
            assert_eq!(
                (r.count, r.dropped, r.lost_records),
                (0, 7, 0),
                "{name} {s}"
            );
            counter.reset().unwrap();
            assert_eq!(counter.read().unwrap().dropped, 0, "{name} {s}");
        }
    }
}
