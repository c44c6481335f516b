//! `common/src/abi.rs` gives each map kind and update mode a number of its
//! own, which the BPF programs (C and Rust) dispatch on, and each map kind
//! its own kernel map type, which loaders read maps by.

use std::collections::BTreeSet;

use bpfstorm_common::MapKind;

include!("../src/abi.rs");

macro_rules! numbers {
    (
        map { $($map:ident = $map_value:literal $_map:tt)+ }
        update { $($update:ident = $update_value:literal $_update:tt)+ }
        ringbuf_bytes = $bytes:expr;
        lru_entries = $lru_entries:expr;
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
fn every_map_kind_is_found_again_by_its_kernel_map_type_or_its_section() {
    for &kind in MapKind::ALL {
        assert_eq!(MapKind::from_object_name(&kind.object_name()), Some(kind));
        if kind.is_global() {
            assert_eq!(kind.object_name(), format!(".data.{kind}"));
            assert_eq!(
                kind.kernel_type(),
                2,
                "{kind}: a global section is an array"
            );
        } else {
            assert_eq!(MapKind::from_kernel_type(kind.kernel_type()), Some(kind));
        }
    }
    assert_eq!(MapKind::from_kernel_type(0), None, "BPF_MAP_TYPE_UNSPEC");
    assert_eq!(MapKind::from_object_name(".bss"), None);
    assert_eq!(
        MapKind::GlobalPercpu.slot_stride(),
        bpfstorm_common::GLOBAL_SLOT_BYTES
    );
    assert_eq!(MapKind::PercpuArray.slot_stride(), 8);
    assert!(MapKind::DEFAULT.iter().all(|k| MapKind::ALL.contains(k)));
}
