//! Every backend reports the size of what it loaded, so Rust-made (aya)
//! and clang-made (libbpf, c) programs can be compared strategy by strategy.

use bpfstorm::backends::{self, NAMES};
use bpfstorm_common::{AttachPoint, Filter, Strategy};

#[test]
fn every_backend_reports_instruction_counts_for_every_strategy() {
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::Cgroup(1)) {
        for name in NAMES {
            let backend = backends::by_name(name).unwrap();
            let counter = backend
                .open(&s)
                .unwrap_or_else(|e| panic!("{name} {s}: {e}"));
            let insns = counter.prog_info().unwrap();
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

/// Every backend sets the read-only globals before load, so the verifier
/// prunes the branches of the strategies not taken: the loaded size
/// depends on the strategy.
#[test]
fn the_strategy_is_fixed_before_load_so_the_verifier_prunes_the_rest() {
    for name in NAMES {
        let backend = backends::by_name(name).unwrap();
        let sizes: Vec<u32> = Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All)
            .iter()
            .map(|s| backend.open(s).unwrap().prog_info().unwrap().xlated_insns)
            .collect();
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max > min, "{name}: one size for every strategy: {sizes:?}");
    }
}
