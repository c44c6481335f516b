//! `common/src/abi.rs` gives each map kind and update mode a number of its
//! own, which the BPF programs (C and Rust) dispatch on, and each map kind
//! its own kernel map type, which loaders read maps by.

use std::collections::BTreeSet;

use bpfstorm_common::{MapKind, Slots, GLOBAL_PERCPU_SLOTS, GLOBAL_SLOT_BYTES};

include!("../src/abi.rs");

macro_rules! numbers {
    (
        map { $($map:ident = $map_value:literal $_map:tt)+ }
        update { $($update:ident = $update_value:literal $_update:tt)+ }
        ringbuf_bytes = $bytes:expr;
        lru_entries = $lru_entries:expr;
        wakeup_batch = $batch:expr;
        global_slot_bytes = $slot_bytes:expr;
        global_percpu_slots = $slots:expr;
    ) => {
        (&[$($map_value),+], &[$($update_value),+])
    };
}

#[test]
fn every_map_kind_and_update_mode_has_a_number_of_its_own() {
    let (maps, updates): (&[u32], &[u32]) = storm_abi!(numbers);
    assert_eq!(maps.iter().collect::<BTreeSet<_>>().len(), maps.len());
    assert_eq!(updates.iter().collect::<BTreeSet<_>>().len(), updates.len());
}

#[test]
fn every_map_kind_is_found_again_by_its_object_name_and_has_its_own_kernel_type() {
    let mut map_types = BTreeSet::new();
    for &kind in MapKind::ALL {
        assert_eq!(MapKind::from_object_name(&kind.object_name()), Some(kind));
        if kind.is_global() {
            assert_eq!(kind.object_name(), format!(".data.{kind}"));
            assert_eq!(kind.kernel_type(), 2, "{kind}: a data section is an array");
        } else {
            assert_eq!(kind.object_name(), kind.name());
            assert!(map_types.insert(kind.kernel_type()), "{kind}: type shared");
        }
    }
    assert_eq!(MapKind::from_object_name(".bss"), None);
    assert_eq!(
        MapKind::GlobalPercpu.slots(),
        Some(Slots::InValue {
            count: GLOBAL_PERCPU_SLOTS,
            stride: GLOBAL_SLOT_BYTES
        })
    );
    assert_eq!(MapKind::PercpuArray.slots(), Some(Slots::PerPossibleCpu));
    assert_eq!(MapKind::Ringbuf.slots(), None);
}

#[test]
fn the_default_matrix_leaves_out_only_the_lru_maps() {
    let left_out: Vec<MapKind> = MapKind::ALL
        .iter()
        .copied()
        .filter(|k| !MapKind::DEFAULT.contains(k))
        .collect();
    assert_eq!(left_out, [MapKind::LruHash, MapKind::LruPercpuHash]);
}
