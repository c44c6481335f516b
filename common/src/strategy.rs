//! What to count and how: attach point x map kind x update mode x filter.
//! Every name here is the one used in the BPF source, the CSV and the CLI.

use std::fmt;
use std::str::FromStr;

use crate::InvalidStrategy;

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($(#[doc = $doc:literal])* $variant:ident => $text:expr,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[doc = $doc])* $variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The variant's doc comment, without the final period as clap
            /// shows doc comments: its meaning, for `--help`.
            pub fn help(self) -> &'static str {
                match self {
                    $($name::$variant => concat!($($doc),*).trim().trim_end_matches('.'),)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = InvalidStrategy;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| InvalidStrategy::UnknownName {
                        kind: $kind,
                        given: s.to_string(),
                        expected: $name::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}

named_enum!(
    /// Where the counting program hooks into the kernel.
    AttachPoint, "attach point" {
        /// tracepoint syscalls/sys_enter_execve: every execve() attempt.
        TpSysEnterExecve => "tp_sys_enter_execve",
        /// tracepoint syscalls/sys_enter_execveat: every execveat() attempt.
        TpSysEnterExecveat => "tp_sys_enter_execveat",
        /// tracepoint sched/sched_process_exec: every successful exec.
        TpSchedProcessExec => "tp_sched_process_exec",
        /// raw tracepoint sys_enter, filtered on the exec syscall numbers.
        RawTpSysEnter => "raw_tp_sys_enter",
        /// BTF-typed tracepoint sys_enter, filtered on the exec syscall numbers.
        TpBtfSysEnter => "tp_btf_sys_enter",
        /// raw tracepoint sched_process_exec.
        RawTpSchedProcessExec => "raw_tp_sched_process_exec",
        /// BTF-typed tracepoint sched_process_exec.
        TpBtfSchedProcessExec => "tp_btf_sched_process_exec",
        /// uprobe on libc's execve(): only callers of the libc wrapper.
        UprobeLibcExecve => "uprobe_libc_execve",
        /// fentry on the execve syscall (BPF trampoline).
        FentrySysExecve => "fentry_sys_execve",
        /// fexit on the execve syscall (BPF trampoline).
        FexitSysExecve => "fexit_sys_execve",
        /// kprobe on the execve syscall's entry function.
        KprobeSysExecve => "kprobe_sys_execve",
        /// ksyscall (kprobe on the arch syscall wrapper, found by libbpf).
        KsyscallExecve => "ksyscall_execve",
        /// LSM hook bprm_check_security: every binary an exec loads (scripts twice).
        LsmBprmCheckSecurity => "lsm_bprm_check_security",
        /// LSM hook bprm_committed_creds: every exec that succeeds.
        LsmBprmCommittedCreds => "lsm_bprm_committed_creds",
    }
);

// `storm_abi!`: every map kind and update mode, with what is known of each.
include!("abi.rs");

/// `MapKind` and `UpdateMode` from `storm_abi!`'s list.
macro_rules! strategy_enums {
    (
        map { $($map_name:ident = $map_abi:literal {
            $(#[doc = $map_doc:literal])*
            $map:ident, $storage:ident $kernel:literal, [$($valid:ident),+], $gives_up:literal
        })+ }
        update { $($update_name:ident = $update_abi:literal {
            $(#[doc = $update_doc:literal])* $update:ident
        })+ }
        ringbuf_bytes = $bytes:expr;
        lru_entries = $lru_entries:expr;
        wakeup_batch = $batch:expr;
        global_slot_bytes = $slot_bytes:expr;
        global_percpu_slots = $slots:expr;
    ) => {
        /// Entries of the LRU maps of one key.
        const LRU_ENTRIES: u32 = $lru_entries;
        /// Records a `batch_wakeup` reader is woken for at once.
        pub const WAKEUP_BATCH: u32 = $batch;
        /// Bytes of each CPU's slot of `global_percpu`: a cache line, so
        /// CPUs never share one.
        pub const GLOBAL_SLOT_BYTES: usize = $slot_bytes;
        /// CPUs `global_percpu` has a slot for.
        pub const GLOBAL_PERCPU_SLOTS: usize = $slots;

        named_enum!(
            /// The BPF map that holds the count (or carries the events out).
            MapKind, "map kind" { $($(#[doc = $map_doc])* $map => stringify!($map_name),)+ }
        );

        named_enum!(
            /// How the program bumps the count.
            UpdateMode, "update mode" { $($(#[doc = $update_doc])* $update => stringify!($update_name),)+ }
        );

        impl MapKind {
            /// The update modes that are meaningful on this map.
            pub fn valid_updates(self) -> &'static [UpdateMode] {
                match self { $(MapKind::$map => &[$(UpdateMode::$valid),+],)+ }
            }

            /// The kernel's `enum bpf_map_type` value for this map.
            pub fn kernel_type(self) -> u32 {
                match self { $(MapKind::$map => $kernel,)+ }
            }

            /// What counting with this map costs besides its measured figures.
            pub fn gives_up(self) -> &'static str {
                match self { $(MapKind::$map => $gives_up,)+ }
            }

            /// Whether the count is a global variable (a section of its
            /// own, `.data.<name>`) rather than a map of its own.
            pub fn is_global(self) -> bool {
                match self { $(MapKind::$map => stringify!($storage) == "global",)+ }
            }
        }
    };
}
storm_abi!(strategy_enums);

impl MapKind {
    /// Whether each CPU has its own slot, which a read sums.
    pub fn is_per_cpu(self) -> bool {
        self.valid_updates() == [UpdateMode::Percpu]
    }

    /// Whether the map carries events out instead of holding a count.
    pub fn is_stream(self) -> bool {
        self.valid_updates().contains(&UpdateMode::Stream)
    }

    /// The update mode a user of this map would write first: the
    /// tutorial's atomic add, a per-CPU map's own slot, a buffer's plain
    /// record.
    pub fn classic_update(self) -> UpdateMode {
        self.valid_updates()[0]
    }

    /// The name of the map that holds the count in the BPF object, as
    /// libbpf and aya name it: the map kind's name, or for a global the
    /// section it has to itself.
    pub fn object_name(self) -> String {
        if self.is_global() {
            format!(".data.{}", self.name())
        } else {
            self.name().to_string()
        }
    }

    /// The map kind whose count `name` (a map of the BPF object) holds.
    pub fn from_object_name(name: &str) -> Option<MapKind> {
        MapKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.object_name() == name)
    }

    /// The ways user space can read the count: a lookup syscall per key
    /// for every map (a buffer's `dropped` too), batched lookups for a
    /// count in a map, and a memory mapping for a count in a plain array's
    /// value (an `array` or a global's section; the kernel maps no per-CPU
    /// or hash map).
    pub fn read_paths(self) -> &'static [ReadPath] {
        if self.is_stream() {
            &[ReadPath::Syscall]
        } else if self.kernel_type() == ARRAY_TYPE {
            &[ReadPath::Syscall, ReadPath::Batch, ReadPath::Mmap]
        } else {
            &[ReadPath::Syscall, ReadPath::Batch]
        }
    }

    /// Whether the count can be spread over keys (`--keys`): the maps
    /// looked up by key, not the globals or the buffers.
    pub fn takes_keys(self) -> bool {
        !self.is_stream() && !self.is_global()
    }

    /// Whether a key is inserted on its first event (and can fail to be,
    /// or push another out), rather than being there from the start.
    pub fn inserts_keys(self) -> bool {
        self.takes_keys() && !matches!(self, MapKind::Array | MapKind::PercpuArray)
    }

    /// Whether a full map pushes out its least recently used key, count
    /// and all, to make room for a new one.
    pub fn evicts(self) -> bool {
        matches!(self, MapKind::LruHash | MapKind::LruPercpuHash)
    }

    /// The entries the object's map has for one key (`None` for globals
    /// and buffers): one, or for the LRU maps enough that CPUs racing to
    /// insert it never evict it.
    pub fn single_key_entries(self) -> Option<u32> {
        match self {
            _ if !self.takes_keys() => None,
            _ if self.evicts() => Some(LRU_ENTRIES),
            _ => Some(1),
        }
    }

    /// The entries a map counting `keys` keys gets unless told otherwise:
    /// one per key, and for the LRU maps one batch of free entries more
    /// per CPU (the kernel hands them out 128 at a time, and evicts when
    /// its shared free list runs short of a batch), so that no key is
    /// evicted while there is room for all.
    pub fn entries_for(self, keys: u32, possible_cpus: usize) -> u32 {
        if self.evicts() {
            let batches = LRU_LOCAL_FREE * u32::try_from(possible_cpus).unwrap_or(u32::MAX);
            keys.saturating_add(batches).max(LRU_ENTRIES)
        } else {
            keys
        }
    }

    /// How the count lies in its map's value at key 0; `None` for the
    /// buffers, whose records are counted in user space.
    pub fn slots(self) -> Option<Slots> {
        const U64: usize = std::mem::size_of::<u64>();
        match (self.is_stream(), self.is_per_cpu(), self.is_global()) {
            (true, _, _) => None,
            (false, true, false) => Some(Slots::PerPossibleCpu),
            (false, true, true) => Some(Slots::InValue {
                count: GLOBAL_PERCPU_SLOTS,
                stride: GLOBAL_SLOT_BYTES,
            }),
            (false, false, _) => Some(Slots::InValue {
                count: 1,
                stride: U64,
            }),
        }
    }

    /// The map kinds a run measures unless told otherwise: the classic
    /// maps, the ring and perf buffers and the globals. The LRU maps
    /// answer a question of their own (what a full map does) and are
    /// asked for by name or with `--matrix full`.
    pub const DEFAULT: &'static [MapKind] = &[
        MapKind::Array,
        MapKind::Hash,
        MapKind::PercpuArray,
        MapKind::PercpuHash,
        MapKind::Ringbuf,
        MapKind::PerfEventArray,
        MapKind::Global,
        MapKind::GlobalPercpu,
    ];
}

/// `BPF_MAP_TYPE_ARRAY`.
const ARRAY_TYPE: u32 = 2;

/// Free LRU entries the kernel moves to a CPU at a time
/// (`LOCAL_FREE_TARGET`, kernel/bpf/bpf_lru_list.c).
const LRU_LOCAL_FREE: u32 = 128;

/// Where a count's u64 slots lie in its map's value; a read sums them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// One per possible CPU: a per-CPU map's lookup returns them all, one
    /// u64 each, while the map's own value size is one u64.
    PerPossibleCpu,
    /// `count` slots `stride` bytes apart, each a u64 at its start, in a
    /// value of `count * stride` bytes.
    InValue { count: usize, stride: usize },
}

impl UpdateMode {
    /// Whether every event must be accounted for: counted, or reported dropped.
    pub fn is_exact(self) -> bool {
        !matches!(self, UpdateMode::Racy)
    }
}

/// What counting with `update` on `map` gives up besides its measured
/// figures: the map's price, and for a buffer when its reader is woken and
/// how the record is written.
pub fn gives_up(map: MapKind, update: UpdateMode) -> String {
    let wakeup = match Wakeup::of(map, update) {
        None => return map.gives_up().to_string(),
        Some(Wakeup::Adaptive) => {
            "a user-space wakeup whenever the reader has caught up (for an idle reader, every \
             record)"
                .to_string()
        }
        Some(Wakeup::EveryRecord) => "a user-space wakeup per record".to_string(),
        Some(Wakeup::Poll) => format!(
            "no wakeup: user space sees a record only when it next polls (every {} ms here), and \
             a reader that polls too rarely lets the ring fill",
            POLL_INTERVAL.as_millis()
        ),
        Some(Wakeup::Batch(n)) if map == MapKind::PerfEventArray => format!(
            "a user-space wakeup every {n} records of a CPU's buffer, so the last few wait for \
             the next poll or read"
        ),
        Some(Wakeup::Batch(n)) => format!(
            "a user-space wakeup once {n} records wait, so the last few wait for the next poll \
             or read; the program asks how much is unread on every event, and forces a wakeup \
             on every record while the reader lags a batch behind"
        ),
    };
    let copy = if update == UpdateMode::Output {
        "; the record is built on the stack and copied in, where reserve writes it in place"
    } else {
        ""
    };
    format!("{}; {wakeup}{copy}", map.gives_up())
}

/// How often a `no_wakeup` reader looks for records: it is never woken.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

/// When a buffer's reader learns that records wait: the strategy's update
/// mode decides it (see [`Strategy::wakeup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wakeup {
    /// On the first record the reader has not seen since it caught up
    /// (the ring buffer's default).
    Adaptive,
    /// On every record (the perf buffer's default, `wakeup_events` 1).
    EveryRecord,
    /// Once this many records wait.
    Batch(u32),
    /// Never: the reader polls every [`POLL_INTERVAL`].
    Poll,
}

impl Wakeup {
    /// When `update` on `map` wakes the reader; `None` for a count in a map.
    pub fn of(map: MapKind, update: UpdateMode) -> Option<Wakeup> {
        if !map.is_stream() {
            return None;
        }
        Some(match (map, update) {
            (_, UpdateMode::BatchWakeup) => Wakeup::Batch(WAKEUP_BATCH),
            (_, UpdateMode::NoWakeup) => Wakeup::Poll,
            (MapKind::PerfEventArray, _) => Wakeup::EveryRecord,
            _ => Wakeup::Adaptive,
        })
    }

    /// Whether user space may see records late: woken in batches, or
    /// never (it polls).
    pub fn is_deferred(self) -> bool {
        matches!(self, Wakeup::Batch(_) | Wakeup::Poll)
    }

    /// The policy a CSV's `wakeup` column names, whatever batch or poll
    /// interval the bpfstorm that wrote it used.
    pub fn from_name(name: &str) -> Option<Wakeup> {
        let number = |digits: &str| {
            let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            digits.parse::<u32>().ok().filter(|&n| all_digits && n > 0)
        };
        match name {
            "adaptive" => Some(Wakeup::Adaptive),
            "every_record" => Some(Wakeup::EveryRecord),
            _ => match name.strip_prefix("batch_") {
                Some(n) => number(n).map(Wakeup::Batch),
                None => {
                    number(name.strip_prefix("poll_")?.strip_suffix("ms")?).map(|_| Wakeup::Poll)
                }
            },
        }
    }

    /// Whether both are the same policy, whatever their numbers.
    pub fn same_kind(self, other: Wakeup) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }

    /// Its name in the CSV's `wakeup` column.
    pub fn name(self) -> String {
        match self {
            Wakeup::Adaptive => "adaptive".into(),
            Wakeup::EveryRecord => "every_record".into(),
            Wakeup::Batch(n) => format!("batch_{n}"),
            Wakeup::Poll => format!("poll_{}ms", POLL_INTERVAL.as_millis()),
        }
    }
}

impl fmt::Display for Wakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

named_enum!(
    /// How user space reads a count.
    ReadPath, "read path" {
        /// A `BPF_MAP_LOOKUP_ELEM` syscall per key.
        Syscall => "syscall",
        /// `BPF_MAP_LOOKUP_BATCH`: every key's value in one syscall (up to 4096 keys a call).
        Batch => "batch",
        /// Loads from the map's value mapped into memory (`BPF_F_MMAPABLE`): no syscall.
        Mmap => "mmap",
    }
);

#[allow(clippy::derivable_impls)]
impl Default for ReadPath {
    fn default() -> Self {
        ReadPath::Syscall
    }
}

/// Which events count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// Every event on the machine, as the classic tutorial counts.
    All,
    /// Only events of tasks in this cgroup v2 (its id, the directory's inode).
    Cgroup(u64),
}

impl Filter {
    pub fn name(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Cgroup(_) => "cgroup",
        }
    }

    pub fn cgroup_id(self) -> Option<u64> {
        match self {
            Filter::All => None,
            Filter::Cgroup(id) => Some(id),
        }
    }
}

/// A complete, valid choice of how to count. Built only through [`Strategy::new`],
/// so an invalid combination never reaches a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Strategy {
    attach: AttachPoint,
    map: MapKind,
    update: UpdateMode,
    filter: Filter,
    read: ReadPath,
    keys: Keys,
}

/// How many keys a count is spread over, and the entries of its map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Keys {
    /// Keys live at once: the program counts an event at its task's tgid
    /// mod `count`. 1: the one key 0 of the classic program.
    pub count: u32,
    /// Entries the loader gives the map; `None`: the object's own (one
    /// key, or a global or a buffer, which have no keys).
    pub max_entries: Option<u32>,
}

impl Keys {
    /// The classic program's single key.
    pub const ONE: Keys = Keys {
        count: 1,
        max_entries: None,
    };
}

impl Strategy {
    pub fn new(
        attach: AttachPoint,
        map: MapKind,
        update: UpdateMode,
        filter: Filter,
    ) -> Result<Self, InvalidStrategy> {
        if !map.valid_updates().contains(&update) {
            return Err(InvalidStrategy::UpdateOnMap {
                map,
                update,
                valid: map
                    .valid_updates()
                    .iter()
                    .map(|u| u.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(Strategy {
            attach,
            map,
            update,
            filter,
            read: ReadPath::Syscall,
            keys: Keys::ONE,
        })
    }

    /// The strategy counting at `keys` keys in a map of `max_entries`
    /// (see [`MapKind::entries_for`] for the size that holds them all);
    /// one key takes the object's own map.
    pub fn with_keys(self, keys: u32, max_entries: u32) -> Result<Strategy, InvalidStrategy> {
        let keys = match keys {
            0 => return Err(InvalidStrategy::NoKeys),
            1 => Keys::ONE,
            _ if !self.map.takes_keys() => {
                return Err(InvalidStrategy::KeysOnMap {
                    map: self.map,
                    keys,
                })
            }
            _ if max_entries == 0 => return Err(InvalidStrategy::NoEntries),
            count => Keys {
                count,
                max_entries: Some(max_entries),
            },
        };
        Ok(Strategy { keys, ..self })
    }

    /// The strategy read through `read`, where its map can be.
    pub fn with_read(self, read: ReadPath) -> Result<Strategy, InvalidStrategy> {
        let paths = self.map.read_paths();
        if !paths.contains(&read) {
            return Err(InvalidStrategy::ReadOnMap {
                map: self.map,
                read,
                valid: paths
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(Strategy { read, ..self })
    }

    /// Every valid map x update pair for one attach point and filter.
    pub fn all_for(attach: AttachPoint, filter: Filter) -> Vec<Strategy> {
        MapKind::ALL
            .iter()
            .flat_map(|&map| {
                map.valid_updates()
                    .iter()
                    .map(move |&update| Strategy::new(attach, map, update, filter))
            })
            .collect::<Result<_, _>>()
            .expect("valid_updates only lists valid pairs")
    }

    pub fn attach(&self) -> AttachPoint {
        self.attach
    }
    pub fn map(&self) -> MapKind {
        self.map
    }
    pub fn update(&self) -> UpdateMode {
        self.update
    }
    pub fn filter(&self) -> Filter {
        self.filter
    }
    pub fn read(&self) -> ReadPath {
        self.read
    }
    pub fn keys(&self) -> Keys {
        self.keys
    }

    /// Whether the count is spread over more than one key.
    pub fn is_keyed(&self) -> bool {
        self.keys.count > 1
    }

    /// Entries of the map that holds the count, as the loader creates it;
    /// `None` for globals and buffers.
    pub fn map_entries(&self) -> Option<u32> {
        self.keys
            .max_entries
            .or_else(|| self.map.single_key_entries())
    }

    /// Whether every event must be accounted for, counted or reported
    /// dropped: not where the update races on purpose, nor where a full
    /// LRU map evicts keys (the counts it loses are measured, not an error).
    pub fn is_exact(&self) -> bool {
        self.update.is_exact() && !(self.is_keyed() && self.map.evicts())
    }

    /// When the reader of a buffer is woken; `None` for a count in a map.
    pub fn wakeup(&self) -> Option<Wakeup> {
        Wakeup::of(self.map, self.update)
    }

    pub fn with_filter(self, filter: Filter) -> Strategy {
        Strategy { filter, ..self }
    }

    /// The BPF program specialised for this strategy, named alike in every
    /// backend: `<attach>__<map>__<update>__<filter>`, e.g.
    /// `tp_sys_enter_execve__array__atomic__all`, and `__keyed` after it
    /// when the count is spread over keys. Each program has its map,
    /// update, filter and keying compiled in; only a `cgroup` one reads the
    /// cgroup id, and only a `keyed` one the number of keys (globals set
    /// before load).
    pub fn program_name(&self) -> String {
        format!(
            "{}__{}__{}__{}{}",
            self.attach,
            self.map,
            self.update,
            self.filter.name(),
            if self.is_keyed() { "__keyed" } else { "" }
        )
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.attach,
            self.map,
            self.update,
            self.filter.name()
        )?;
        if let Keys {
            count,
            max_entries: Some(entries),
        } = self.keys
        {
            write!(f, " ({count} keys, {entries} entries)")?;
        }
        match self.read {
            ReadPath::Syscall => Ok(()),
            read => write!(f, " (read by {read})"),
        }
    }
}

// The classic tutorial's counter (a tracepoint bumping one array slot
// atomically): what a row built with `..Default::default()` names. Written
// out rather than derived so `named_enum!` stays one list of names.
#[allow(clippy::derivable_impls)]
impl Default for AttachPoint {
    fn default() -> Self {
        AttachPoint::TpSysEnterExecve
    }
}

#[allow(clippy::derivable_impls)]
impl Default for MapKind {
    fn default() -> Self {
        MapKind::Array
    }
}

#[allow(clippy::derivable_impls)]
impl Default for UpdateMode {
    fn default() -> Self {
        UpdateMode::Atomic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percpu_update_on_shared_array_is_rejected() {
        let err = Strategy::new(
            AttachPoint::TpSysEnterExecve,
            MapKind::Array,
            UpdateMode::Percpu,
            Filter::All,
        )
        .unwrap_err();
        assert!(err.to_string().contains("atomic, racy"), "{err}");
    }

    #[test]
    fn every_map_has_a_valid_strategy_and_names_round_trip() {
        let all = Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All);
        let pairs: usize = MapKind::ALL.iter().map(|m| m.valid_updates().len()).sum();
        assert_eq!(all.len(), pairs);
        for s in all {
            assert_eq!(s.map().name().parse::<MapKind>().unwrap(), s.map());
            assert_eq!(s.update().name().parse::<UpdateMode>().unwrap(), s.update());
        }
        for a in AttachPoint::ALL {
            assert_eq!(a.name().parse::<AttachPoint>().unwrap(), *a);
        }
    }

    #[test]
    fn program_names_join_the_strategy_names() {
        let s = Strategy::new(
            AttachPoint::TpSysEnterExecve,
            MapKind::PercpuArray,
            UpdateMode::Percpu,
            Filter::Cgroup(7),
        )
        .unwrap();
        assert_eq!(
            s.program_name(),
            "tp_sys_enter_execve__percpu_array__percpu__cgroup"
        );
    }

    #[test]
    fn buffers_say_when_their_reader_wakes_and_what_their_mode_gives_up() {
        let wakeup = |map, update| Wakeup::of(map, update).map(Wakeup::name);
        assert_eq!(wakeup(MapKind::Array, UpdateMode::Atomic), None);
        assert_eq!(
            wakeup(MapKind::Ringbuf, UpdateMode::Output).as_deref(),
            Some("adaptive")
        );
        assert_eq!(
            wakeup(MapKind::PerfEventArray, UpdateMode::Stream).as_deref(),
            Some("every_record")
        );
        assert_eq!(
            wakeup(MapKind::PerfEventArray, UpdateMode::BatchWakeup),
            Some(format!("batch_{WAKEUP_BATCH}"))
        );
        assert_eq!(
            wakeup(MapKind::Ringbuf, UpdateMode::NoWakeup),
            Some(format!("poll_{}ms", POLL_INTERVAL.as_millis()))
        );
        // The texts name the numbers the programs and readers use.
        let no_wakeup = gives_up(MapKind::Ringbuf, UpdateMode::NoWakeup);
        assert!(
            no_wakeup.contains(&format!("every {} ms", POLL_INTERVAL.as_millis())),
            "{no_wakeup}"
        );
        let batch = gives_up(MapKind::Ringbuf, UpdateMode::BatchWakeup);
        assert!(
            batch.contains(&format!("once {WAKEUP_BATCH} records")),
            "{batch}"
        );
        assert_eq!(
            gives_up(MapKind::Array, UpdateMode::Atomic),
            MapKind::Array.gives_up()
        );
        // Names read back to their policy, numbers of other builds too.
        for w in [
            Wakeup::Adaptive,
            Wakeup::EveryRecord,
            Wakeup::Batch(WAKEUP_BATCH),
            Wakeup::Poll,
        ] {
            assert_eq!(Wakeup::from_name(&w.name()), Some(w));
        }
        assert_eq!(Wakeup::from_name("batch_7"), Some(Wakeup::Batch(7)));
        assert_eq!(Wakeup::from_name("poll_25ms"), Some(Wakeup::Poll));
        for bad in [
            "", "batch_0", "batch_+7", "batch_", "poll_ms", "poll_5s", "Adaptive",
        ] {
            assert_eq!(Wakeup::from_name(bad), None, "{bad}");
        }
        assert!(Wakeup::Batch(7).same_kind(Wakeup::Batch(64)));
        assert!(!Wakeup::Poll.same_kind(Wakeup::Adaptive));
        for &map in MapKind::ALL {
            assert_eq!(map.classic_update(), map.valid_updates()[0]);
            assert_eq!(
                map.is_stream(),
                Wakeup::of(map, map.classic_update()).is_some()
            );
        }
    }

    #[test]
    fn unknown_name_lists_the_choices() {
        let err = "arry".parse::<MapKind>().unwrap_err().to_string();
        assert!(
            err.contains("unknown map kind `arry`") && err.contains("percpu_hash"),
            "{err}"
        );
    }
}
