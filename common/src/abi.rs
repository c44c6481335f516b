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
// doc comment, which `--help` shows), its `MapKind` variant, its kernel map
// type (`enum bpf_map_type`), the update modes that work on it, and what
// counting with it gives up. The braces make the facts one token tree,
// which includers that need only the numbers skip.
macro_rules! storm_abi {
    ($emit:ident) => {
        $emit! {
            map {
                array = 0 {
                    /// One slot shared by every CPU.
                    Array, kernel 2, [Atomic, Racy],
                    "one shared slot: every CPU's atomic add contends on one cache line, which grows with CPU count"
                }
                hash = 1 {
                    /// One key of a hash map shared by every CPU.
                    Hash, kernel 1, [Atomic, Racy],
                    "a hash lookup (and an insert the first time) per event, for nothing when there is one key"
                }
                percpu_array = 2 {
                    /// One slot per CPU, summed by the read.
                    PercpuArray, kernel 6, [Percpu],
                    "memory per CPU, and a read that sums every CPU's slot (grows with CPU count)"
                }
                percpu_hash = 3 {
                    /// One key of a hash map with a value per CPU, summed by the read.
                    PercpuHash, kernel 5, [Percpu],
                    "memory per CPU plus a hash lookup per event; the read sums every CPU"
                }
                ringbuf = 4 {
                    /// A ring buffer shared by every CPU: a record per event, counted in user space.
                    Ringbuf, kernel 27, [Stream],
                    "a record and a user-space wakeup per event; a full ring drops events (reported)"
                }
                perf_event_array = 5 {
                    /// A perf buffer per CPU: a record per event, counted in user space.
                    PerfEventArray, kernel 4, [Stream],
                    "a per-CPU buffer and a wakeup per event; records can be lost (reported), and order across CPUs is not kept"
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
                    /// One record per event to user space, which counts them.
                    Stream
                }
            }
            ringbuf_bytes = 256 * 1024;
        }
    };
}
