//! The C loader on the real kernel, without the harness: every map kind
//! and update mode loads, counts execs and resets. The c backend refuses
//! nothing: it is the one that opens a perf buffer woken in batches
//! (perf_event_array/batch_wakeup), which libbpf-rs and aya cannot.

use std::process::Command;

use bpfstorm_common::{AttachPoint, Backend, Filter, Introspection, Strategy};
use bpfstorm_ebpf_c::CLoader;

#[test]
fn every_strategy_loads_and_counts_some_execs() {
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All) {
        let mut c = CLoader.open(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        for _ in 0..50 {
            assert!(Command::new("/bin/true").status().unwrap().success());
        }
        let r = c.read().unwrap();
        let view = Introspection::open(c.loaded()).unwrap();
        let insns = view.prog_insns().unwrap();
        println!(
            "{s}: {r:?} {:?} {insns:?} mem={} {:?} t={:?}",
            view.prog_stats().unwrap(),
            view.map_memory_bytes().unwrap(),
            c.loaded(),
            c.timings()
        );
        assert!(r.count >= 50, "{s}: {r:?}");
        assert_eq!(c.loaded().progs.len(), 1, "{s}");
        assert!(
            insns.xlated_insns > 0 && insns.jited_bytes > 0,
            "{s}: {insns:?}"
        );
        c.reset().unwrap();
        assert_eq!(c.read().unwrap().count, 0, "{s}");
    }
}
