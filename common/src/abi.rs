// Every map kind and update mode of the strategy model, one entry each,
// with all that user space needs to know of it, and the numbers the BPF
// programs have compiled in. The one source for `MapKind` and `UpdateMode`
// (common/src/strategy.rs), the C programs (backends/ebpf-c/build_support.rs
// writes `bpfstorm_abi.h`) and the Rust ones (backends/aya/ebpf), so a new
// map kind is one entry here plus its BPF code in those two. No items, no
// dependencies: each includer defines `$emit` to make what it needs from
// the list, so nothing goes unused.
//
// An entry: `name = number { facts }`. A map kind's facts: what it is (a
// doc comment, which `--help` shows), its `MapKind` variant, where the
// count lives and that map's kernel type (`enum bpf_map_type`): `map N`, a
// map of its own named `name`, or `global N`, a global variable in a
// section of its own, `.data.<name>`, which libbpf and aya turn into an
// array map of that name; the update modes that work on it (the first is
// its classic one), and what counting with it gives up. The braces make
// the facts one token tree, which includers that need only the numbers
// skip.
macro_rules! storm_abi {
    ($emit:ident) => {
        $emit! {
            map {
                array = 0 {
                    /// One slot shared by every CPU.
                    Array, map 2, [Atomic, Racy],
                    "one shared slot: every CPU's atomic add contends on one cache line, which grows with CPU count"
                }
                hash = 1 {
                    /// One key of a hash map shared by every CPU.
                    Hash, map 1, [Atomic, Racy],
                    "a hash lookup (and an insert the first time) per event, for nothing when there is one key"
                }
                percpu_array = 2 {
                    /// One slot per CPU, summed by the read.
                    PercpuArray, map 6, [Percpu],
                    "memory per CPU, and a read that sums every CPU's slot (grows with CPU count)"
                }
                percpu_hash = 3 {
                    /// One key of a hash map with a value per CPU, summed by the read.
                    PercpuHash, map 5, [Percpu],
                    "memory per CPU plus a hash lookup per event; the read sums every CPU"
                }
                ringbuf = 4 {
                    /// A ring buffer shared by every CPU: a record per event, counted in user space.
                    Ringbuf, map 27, [Stream, Output, NoWakeup, BatchWakeup],
                    "a record per event into one ring for every CPU; a full ring drops events (reported)"
                }
                perf_event_array = 5 {
                    /// A perf buffer per CPU: a record per event, counted in user space.
                    PerfEventArray, map 4, [Stream, BatchWakeup],
                    "a buffer per CPU and a record per event; a full buffer loses records (reported), and order across CPUs is not kept"
                }
                lru_hash = 6 {
                    /// One key of an LRU hash map (1024 entries) shared by every CPU.
                    LruHash, map 9, [Atomic, Racy],
                    "a hash lookup per event plus LRU bookkeeping; a full map evicts its least recently used key, count included"
                }
                lru_percpu_hash = 7 {
                    /// One key of an LRU hash map (1024 entries) with a value per CPU, summed by the read.
                    LruPercpuHash, map 10, [Percpu],
                    "memory per CPU, a hash lookup and LRU bookkeeping per event; a full map evicts keys, counts included"
                }
                global = 8 {
                    /// A global u64 (its own `.data` section), no map lookup: the program writes it directly.
                    Global, global 2, [Atomic, Racy],
                    "one shared slot, as an array's: every CPU's atomic add contends on one cache line; no lookup, no key"
                }
                global_percpu = 9 {
                    /// A global array of cache-line slots indexed by CPU id (its own `.data` section), summed by the read.
                    GlobalPercpu, global 2, [Percpu],
                    "a 64-byte slot for each of up to 512 CPUs (32 KiB, refused on bigger machines), and a read that sums them all"
                }
            }
            update {
                atomic = 0 {
                    /// `__sync_fetch_and_add` on one shared slot.
                    Atomic
                }
                percpu = 1 {
                    /// Plain increment of this CPU's own slot; user space sums the slots.
                    Percpu
                }
                racy = 2 {
                    /// Plain `+= 1` on one shared slot: loses updates under contention, on purpose.
                    Racy
                }
                stream = 3 {
                    /// One record per event to user space, which counts them: ring buffer
                    /// reserve and submit (the reader woken when it has caught up), perf
                    /// buffer output (woken on every record).
                    Stream
                }
                output = 4 {
                    /// As `stream`, but the record is built on the stack and copied in
                    /// with `bpf_ringbuf_output`.
                    Output
                }
                no_wakeup = 5 {
                    /// As `stream`, submitted with `BPF_RB_NO_WAKEUP`: the reader is never
                    /// woken, it polls on an interval.
                    NoWakeup
                }
                batch_wakeup = 6 {
                    /// As `stream`, but the reader is woken once a batch of records waits:
                    /// the ring buffer's program forces a wakeup when its unread data
                    /// reaches the batch (and submits without one before), the perf
                    /// buffer is opened with `wakeup_events` set to the batch.
                    BatchWakeup
                }
            }
            ringbuf_bytes = 256 * 1024;
            lru_entries = 1024;
            wakeup_batch = 64;
            global_slot_bytes = 64;
            global_percpu_slots = 512;
        }
    };
}
