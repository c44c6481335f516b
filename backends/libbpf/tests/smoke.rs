use std::process::Command;

use bpfstorm_common::{AttachPoint, Backend, Filter, Introspection, Strategy};
use bpfstorm_libbpf::Libbpf;

#[test]
fn every_strategy_loads_and_counts_some_execs() {
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All) {
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
