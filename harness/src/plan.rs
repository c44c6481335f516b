//! The matrix a run measures: backends x strategies, one storm spec.

use bpfstorm_common::{AttachPoint, Filter, InvalidStrategy, MapKind, Strategy, UpdateMode};

/// Every valid attach x map x update combination of the choices; an empty
/// `maps` or `updates` means all. Invalid pairs are left out, but a choice
/// that leaves nothing at all is an error that says what would work.
pub fn strategies(
    attach: &[AttachPoint],
    maps: &[MapKind],
    updates: &[UpdateMode],
) -> Result<Vec<Strategy>, InvalidStrategy> {
    let maps = if maps.is_empty() { MapKind::ALL } else { maps };
    let mut out = Vec::new();
    let mut first_error = None;
    for &a in attach {
        for &m in maps {
            let wanted: &[UpdateMode] = if updates.is_empty() {
                m.valid_updates()
            } else {
                updates
            };
            for &u in wanted {
                match Strategy::new(a, m, u, Filter::All) {
                    Ok(s) => out.push(s),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
    }
    match (out.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_is_every_valid_pair() {
        let s = strategies(&[AttachPoint::TpSysEnterExecve], &[], &[]).unwrap();
        assert_eq!(s.len(), 8);
    }

    #[test]
    fn filters_keep_only_valid_pairs() {
        let s = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Array, MapKind::PercpuArray],
            &[UpdateMode::Atomic, UpdateMode::Percpu],
        )
        .unwrap();
        let names: Vec<String> = s
            .iter()
            .map(|s| format!("{}/{}", s.map(), s.update()))
            .collect();
        assert_eq!(names, ["array/atomic", "percpu_array/percpu"]);
    }

    #[test]
    fn nothing_valid_is_an_error() {
        let err = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Array],
            &[UpdateMode::Percpu],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("does not work on map `array`"),
            "{err}"
        );
    }
}
