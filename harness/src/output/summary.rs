//! The run table: one line per cell, units in the headers, an interval on
//! every timing, and a closing line that only ranks what the noise allows.

use crate::aggregate::{aggregate, distinct, Aggregate, Interval};
use crate::export::csv::{Kernel, Row, Timing};
use crate::export::escape::terminal as t;
use crate::output::table::{Align, Table};

/// A cell's accuracy in words: updates that may race report what they lost;
/// the others are exact or a mismatch.
fn verdict(a: &Aggregate) -> String {
    if !a.is_ok() {
        return a.status.to_string();
    }
    let missing = a.missing.unwrap_or(0);
    let expected = a.expected.unwrap_or(0);
    match (a.first.update.is_exact(), missing) {
        (false, 0) => "exact (no race hit)".into(),
        (false, n) if n > 0 => format!(
            "lost {n} updates ({:.2}%)",
            n as f64 * 100.0 / expected.max(1) as f64
        ),
        (_, 0) => "exact".into(),
        (_, n) => format!("MISMATCH {n:+}"),
    }
}

fn count(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The value every cell shares in a column, if they all share one.
fn shared<T: PartialEq>(cells: &[Aggregate], field: fn(&Row) -> T) -> Option<T> {
    let first = field(&cells.first()?.first);
    cells
        .iter()
        .all(|a| field(&a.first) == first)
        .then_some(first)
}

/// End-to-end cost per exec over the repetitions: the mean and its 95%
/// interval when that leaves out zero; otherwise the smallest effect this
/// noise could have shown (the interval's half-width), never a point value.
fn e2e(a: &Aggregate) -> String {
    if a.first.baseline_wall_s.is_none() {
        return "-".into();
    }
    let Some(e) = a.e2e_ns_per_exec else {
        return "one pair: no interval".into();
    };
    if e.excludes_zero() {
        format!("{:.0} [{:.0}, {:.0}]", e.mean, e.lo, e.hi)
    } else {
        format!("< {:.0} at this noise", e.half_width())
    }
}

/// The table, one section per kernel when the run spans several.
pub fn render(all: &[Row]) -> String {
    let kernels = distinct(all.iter().map(Row::kernel_id));
    if kernels.len() < 2 {
        return render_kernel(all);
    }
    let mut by_kernel: std::collections::BTreeMap<Kernel, Vec<Row>> = Default::default();
    for r in all {
        by_kernel.entry(r.kernel_id()).or_default().push(r.clone());
    }
    let mut out = String::new();
    for kernel in kernels {
        out.push_str(&format!(
            "\n== kernel {} ({}) ==\n",
            t(&kernel.release),
            timing(kernel.timing)
        ));
        out.push_str(&render_kernel(&by_kernel[&kernel]));
    }
    out
}

fn timing(timing: Timing) -> &'static str {
    match timing {
        Timing::Emulated => {
            "guest under software emulation: counts are real, times are emulation's"
        }
        Timing::Native => "native",
    }
}

fn render_kernel(all: &[Row]) -> String {
    let cells = aggregate(all);
    let Some(first) = cells.first().map(|a| &a.first) else {
        return "no cells were measured\n".into();
    };
    // Columns that hold one value for the whole run move to the title line.
    let backend = shared(&cells, |r| r.backend.clone());
    let attach = shared(&cells, |r| r.attach);
    let repetitions = cells.iter().map(|a| a.repetitions).max().unwrap_or(1);
    let mut title = vec![format!(
        "storm: {} workers x {} execs of `{}` ({}), filter {}, {repetitions} repetition(s) per cell (counts summed over them)",
        first.workers, first.execs_per_worker, t(&first.target), t(&first.spawn), t(&first.filter)
    )];
    if first.timing == Timing::Emulated {
        title.push(format!(
            "kernel {} ({})",
            t(&first.kernel),
            timing(first.timing)
        ));
    }
    title.extend(
        backend
            .as_ref()
            .map(|b| format!("backend {} ({})", t(b), t(&first.backend_version))),
    );
    title.extend(attach.map(|a| format!("attach {a}")));

    let mut columns = Vec::new();
    if backend.is_none() {
        columns.push(("backend", Align::Left));
    }
    if attach.is_none() {
        columns.push(("attach", Align::Left));
    }
    columns.extend([
        ("map", Align::Left),
        ("update", Align::Left),
        ("counted", Align::Right),
        ("oracle", Align::Right),
        ("dropped", Align::Right),
        ("verdict", Align::Left),
        ("ns/event [95% CI]", Align::Right),
        ("ns/run [95% CI]", Align::Right),
        ("insns verified/xlated, JIT B", Align::Right),
        ("open+load+attach ms", Align::Right),
        ("read us [95% CI]", Align::Right),
        ("e2e ns/exec [95% CI]", Align::Right),
        ("map KiB", Align::Right),
        ("loader heap KiB", Align::Right),
    ]);
    let mut table = Table::new(&columns);
    for a in &cells {
        let r = &a.first;
        let mut line = Vec::new();
        if backend.is_none() {
            line.push(t(&r.backend));
        }
        if attach.is_none() {
            line.push(r.attach.to_string());
        }
        line.extend([
            r.map.to_string(),
            r.update.to_string(),
            count(a.counted),
            count(a.expected),
            count(a.dropped),
            verdict(a),
            Interval::text(a.ns_per_event, 0),
            Interval::text(a.ns_per_run, 0),
            match (r.verified_insns, r.xlated_insns, r.jited_bytes) {
                (Some(v), Some(x), Some(j)) => format!("{v}/{x}, {j}"),
                _ => "-".into(),
            },
            match (a.open_ms, a.load_ms, a.attach_ms) {
                (Some(o), Some(l), Some(at)) => format!("{:.1}", o + l + at),
                _ => "-".into(),
            },
            Interval::text(a.read_us, 1),
            e2e(a),
            r.map_bytes
                .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1024.0)),
            r.loader_heap_bytes
                .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1024.0)),
        ]);
        table.push(line);
    }
    let mut out = title.join("; ");
    out.push_str("\n\n");
    out.push_str(&table.render());
    for a in cells.iter().filter(|a| !a.error.is_empty()) {
        let r = &a.first;
        out.push_str(&format!(
            "{} {}/{}/{}: {}\n",
            t(&r.backend),
            r.attach,
            r.map,
            r.update,
            t(&a.error)
        ));
    }
    for a in cells.iter().filter(|a| !a.outliers.is_empty()) {
        out.push_str(&format!(
            "warning: {}: repetition(s) {:?} are outliers in ns/run (outside 1.5 IQR of the others): was the machine busy?\n",
            label(a),
            a.outliers
        ));
    }
    let brackets = distinct(cells.iter().map(|a| a.bracket.describe()));
    out.push_str(&format!(
        "ns/event: in-kernel (bpf_stats) time per counted event, filtered-out runs included; ns/run: per program run; \
         both include the stats' own clock reads (`bpfstorm collateral` measures that bias). \
         Timings are the {}. e2e: storm wall time with minus without the probe, per exec, both storms under the same \
         oracles and stats; the mean over repetitions [95% t-interval], or `< X` when the interval holds zero \
         (X: the smallest effect this noise could show).\n",
        brackets.join("; or the ")
    ));
    if first.timing == Timing::Emulated {
        out.push_str("times above are QEMU's software emulation, not this CPU's: not ranked\n");
    } else if let Some(line) = cheapest(&cells) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn label(a: &Aggregate) -> String {
    let r = &a.first;
    format!("{} {} {}/{}", t(&r.backend), r.attach, r.map, r.update)
}

/// Names the cheapest cell in-kernel by ns per counted event, and every
/// cell whose 95% interval overlaps its own: those differences are inside
/// the noise.
fn cheapest(cells: &[Aggregate]) -> Option<String> {
    let timed: Vec<(&Aggregate, Interval)> = cells
        .iter()
        .filter(|a| a.is_exact_counter())
        .filter_map(|a| Some((a, a.ns_per_event?)))
        .collect();
    if timed.len() < 2 {
        return None;
    }
    let (best, figure) = timed
        .iter()
        .min_by(|a, b| a.1.point.total_cmp(&b.1.point))?;
    let ties: Vec<String> = timed
        .iter()
        .filter(|(a, i)| !std::ptr::eq(*a, *best) && i.lo <= figure.hi)
        .map(|(a, _)| label(a))
        .collect();
    let mut line = format!(
        "cheapest exact counter in-kernel: {} at {:.0} ns/event [{:.0}, {:.0}]",
        label(best),
        figure.point,
        figure.lo,
        figure.hi
    );
    if ties.is_empty() {
        line.push_str("; its 95% interval overlaps no other cell's");
    } else {
        line.push_str(&format!(
            "; inside the noise of: {} (95% intervals overlap, no ranking among them)",
            ties.join(", ")
        ));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use bpfstorm_common::{MapKind, UpdateMode};

    use super::*;
    use crate::export::csv::Status;

    fn row(map: MapKind, update: UpdateMode, missing: i64, ns: f64) -> Row {
        Row {
            backend: "libbpf".into(),
            map,
            update,
            expected: Some(1000),
            counted: Some((1000 - missing) as u64),
            missing: Some(missing),
            exact: Some(missing == 0),
            ns_per_event_median: Some(ns),
            ns_per_event_ci95_lo: Some(ns - 5.0),
            ns_per_event_ci95_hi: Some(ns + 5.0),
            ..Row::default()
        }
    }

    fn verdict_of(r: Row) -> String {
        verdict(&aggregate(&[r])[0])
    }

    #[test]
    fn verdicts_tell_races_from_mismatches() {
        assert_eq!(
            verdict_of(row(MapKind::Array, UpdateMode::Atomic, 0, 50.0)),
            "exact"
        );
        assert_eq!(
            verdict_of(row(MapKind::Array, UpdateMode::Atomic, -2, 50.0)),
            "MISMATCH -2"
        );
        assert_eq!(
            verdict_of(row(MapKind::Array, UpdateMode::Racy, 0, 50.0)),
            "exact (no race hit)"
        );
        assert_eq!(
            verdict_of(row(MapKind::Array, UpdateMode::Racy, 5, 50.0)),
            "lost 5 updates (0.50%)"
        );
        let refused = Row {
            status: Status::Unsupported,
            ..row(MapKind::Ringbuf, UpdateMode::Stream, 0, 50.0)
        };
        assert_eq!(verdict_of(refused), "unsupported");
    }

    #[test]
    fn the_cheapest_exact_counter_is_named_with_the_cells_inside_its_noise() {
        let cells = aggregate(&[
            row(MapKind::Array, UpdateMode::Atomic, 0, 100.0),
            row(MapKind::PercpuArray, UpdateMode::Percpu, 0, 50.0),
            row(MapKind::Hash, UpdateMode::Atomic, 0, 58.0),
            row(MapKind::Array, UpdateMode::Racy, 0, 10.0),
        ]);
        assert_eq!(
            cheapest(&cells).unwrap(),
            "cheapest exact counter in-kernel: libbpf tp_sys_enter_execve percpu_array/percpu at 50 \
             ns/event [45, 55]; inside the noise of: libbpf tp_sys_enter_execve hash/atomic \
             (95% intervals overlap, no ranking among them)"
        );
        let apart = aggregate(&[
            row(MapKind::Array, UpdateMode::Atomic, 0, 100.0),
            row(MapKind::PercpuArray, UpdateMode::Percpu, 0, 50.0),
        ]);
        assert!(cheapest(&apart)
            .unwrap()
            .ends_with("; its 95% interval overlaps no other cell's"));
        assert_eq!(cheapest(&apart[..1]), None, "one cell ranks nothing");
    }

    #[test]
    fn shared_columns_move_to_the_title_and_emulated_runs_are_not_ranked() {
        let rows = [
            row(MapKind::Array, UpdateMode::Atomic, 0, 100.0),
            row(MapKind::PercpuArray, UpdateMode::Percpu, 0, 50.0),
        ];
        let text = render(&rows);
        let title = text.lines().next().unwrap();
        assert!(title.contains("; backend libbpf ("), "{title}");
        assert!(title.ends_with("; attach tp_sys_enter_execve"), "{title}");
        assert!(text.contains("cheapest exact counter in-kernel"), "{text}");

        let guest = rows.map(|r| Row {
            timing: Timing::Emulated,
            ..r
        });
        let text = render(&guest);
        assert!(!text.contains("cheapest"), "{text}");
        assert!(text.contains("not ranked"), "{text}");
    }

    #[test]
    fn runs_over_several_kernels_get_a_section_each() {
        let host = row(MapKind::Array, UpdateMode::Atomic, 0, 100.0);
        let guest = Row {
            kernel: "6.1".into(),
            timing: Timing::Emulated,
            ..host.clone()
        };
        let text = render(&[host, guest]);
        assert!(text.contains("\n== kernel  (native) ==\n"), "{text}");
        assert!(
            text.contains("\n== kernel 6.1 (guest under software emulation"),
            "{text}"
        );
    }
}
