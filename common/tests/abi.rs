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
fn every_map_kind_is_found_again_by_its_kernel_map_type() {
    for &kind in MapKind::ALL {
        assert_eq!(MapKind::from_kernel_type(kind.kernel_type()), Some(kind));
    }
    assert_eq!(MapKind::from_kernel_type(0), None, "BPF_MAP_TYPE_UNSPEC");
}
