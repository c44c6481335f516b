use std::process::Command;

use bpfstorm_common::{
    AttachPoint, Backend, CounterError, Filter, Introspection, MapKind, Strategy, UpdateMode,
};
use bpfstorm_libbpf::Libbpf;

/// Whether libbpf-rs cannot run `s`: its `PerfBufferBuilder` opens every
/// perf buffer woken on each record, with no way to set `wakeup_events`.
fn refused(s: &Strategy) -> bool {
    (s.map(), s.update()) == (MapKind::PerfEventArray, UpdateMode::BatchWakeup)
}

#[test]
fn every_strategy_loads_and_counts_some_execs() {
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All) {
        if refused(&s) {
            match Libbpf.open(&s) {
                Err(e @ CounterError::Unsupported { errno: None, .. }) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("wakeup_events") && e.contains("PerfBufferBuilder"),
                        "{s}: {e}"
                    );
                    println!("{s}: refused: {e}");
                }
                Err(e) => panic!("{s}: not the typed refusal: {e:?}"),
                Ok(_) => panic!("{s}: loaded, but libbpf-rs cannot set wakeup_events"),
            }
            continue;
        }
        let mut c = Libbpf.open(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        for _ in 0..50 {
            Command::new("/bin/true").status().unwrap();
        }
        let r = c.read().unwrap();
        let view = Introspection::open(c.loaded()).unwrap();
        println!(
            "{s}: {r:?} {:?} {:?} mem={} {:?} t={:?}",
            view.prog_stats().unwrap(),
            view.prog_insns().unwrap(),
            view.map_memory_bytes().unwrap(),
            c.loaded(),
            c.timings()
        );
        assert!(r.count >= 50, "{s}: {r:?}");
        c.reset().unwrap();
        assert_eq!(c.read().unwrap().count, 0);
    }
}
