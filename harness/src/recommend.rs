//! `bpfstorm recommend`: from a run, what to choose for three jobs, why,
//! and what the choice gives up; an honest tie where intervals overlap.

use crate::aggregate::aggregate;
use crate::export::csv::Row;
use crate::export::escape::name;

/// One job a counter can be picked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// An exact count at the lowest in-kernel cost.
    ExactCount,
    /// An exact count that user space reads cheaply.
    CheapRead,
    /// Every event delivered to user space.
    Streaming,
}

impl Goal {
    pub const ALL: [Goal; 3] = [Goal::ExactCount, Goal::CheapRead, Goal::Streaming];

    fn title(self) -> &'static str {
        match self {
            Goal::ExactCount => "Exact counting at the lowest in-kernel cost",
            Goal::CheapRead => "Exact counting with the cheapest read from user space",
            Goal::Streaming => "Per-event streaming to user space",
        }
    }

    fn eligible(self, r: &Row) -> bool {
        let streaming = matches!(r.map.as_str(), "ringbuf" | "perf_event_array");
        // Emulated times (guest kernels) say nothing about this CPU's cost.
        r.status == "ok"
            && r.timing == "native"
            && r.exact == Some(true)
            && r.update != "racy"
            && match self {
                Goal::ExactCount | Goal::CheapRead => !streaming,
                Goal::Streaming => streaming && r.dropped == Some(0),
            }
    }

    /// The figure to minimise: median and 95% interval.
    fn figure(self, r: &Row) -> Option<(f64, f64, f64)> {
        match self {
            Goal::ExactCount | Goal::Streaming => Some((
                r.ns_per_event_median?,
                r.ns_per_event_ci95_lo?,
                r.ns_per_event_ci95_hi?,
            )),
            Goal::CheapRead => Some((r.read_us_median?, r.read_us_ci95_lo?, r.read_us_ci95_hi?)),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Goal::CheapRead => "us/read",
            _ => "ns/event",
        }
    }
}

/// What a map choice costs besides its measured figure.
fn gives_up(r: &Row) -> &'static str {
    match r.map.as_str() {
        "array" => "one shared slot: every CPU's atomic add contends on one cache line, which grows with CPU count",
        "hash" => "a hash lookup (and an insert the first time) per event, for nothing when there is one key",
        "percpu_array" => "memory per CPU, and a read that sums every CPU's slot (grows with CPU count)",
        "percpu_hash" => "memory per CPU plus a hash lookup per event; the read sums every CPU",
        "ringbuf" => "a record and a user-space wakeup per event; a full ring drops events (reported)",
        "perf_event_array" => "a per-CPU buffer and a wakeup per event; records can be lost (reported), and order across CPUs is not kept",
        _ => "unknown map kind",
    }
}

fn label(r: &Row) -> String {
    format!(
        "{} {} {}/{}",
        name(&r.backend),
        name(&r.attach),
        name(&r.map),
        name(&r.update)
    )
}

#[derive(Debug, Clone)]
pub struct Advice {
    pub goal: Goal,
    pub best: Option<Row>,
    /// Rows whose interval overlaps the best one's: not distinguishable.
    pub ties: Vec<Row>,
}

pub fn recommend(rows: &[Row]) -> Vec<Advice> {
    let rows: Vec<Row> = aggregate(rows).into_iter().map(|a| a.row).collect();
    Goal::ALL
        .iter()
        .map(|&goal| {
            let mut eligible: Vec<(&Row, (f64, f64, f64))> = rows
                .iter()
                .filter(|r| goal.eligible(r))
                .filter_map(|r| Some((r, goal.figure(r)?)))
                .collect();
            eligible.sort_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
            let Some(&(best, (_, _, best_hi))) = eligible.first() else {
                return Advice {
                    goal,
                    best: None,
                    ties: Vec::new(),
                };
            };
            let ties = eligible[1..]
                .iter()
                .filter(|(_, (_, lo, _))| *lo <= best_hi)
                .map(|(r, _)| (*r).clone())
                .collect();
            Advice {
                goal,
                best: Some(best.clone()),
                ties,
            }
        })
        .collect()
}

pub fn render_markdown(advice: &[Advice]) -> String {
    let mut out = String::from("# Recommendation\n");
    for a in advice {
        out.push_str(&format!("\n## {}\n\n", a.goal.title()));
        let Some(best) = &a.best else {
            out.push_str("No eligible cell in this run (none was measured exact for this job).\n");
            continue;
        };
        let (m, lo, hi) = a.goal.figure(best).unwrap_or_default();
        let unit = a.goal.unit();
        if a.ties.is_empty() {
            out.push_str(&format!(
                "Choose **{}**: {m:.1} {unit} [95% interval {lo:.1}, {hi:.1}], below every other \
                 eligible cell's interval.\n",
                label(best)
            ));
        } else {
            out.push_str(&format!(
                "**Tie**: {} has the lowest figure ({m:.1} {unit} [{lo:.1}, {hi:.1}]), but its \
                 interval overlaps {}: at this noise they cannot be ranked; choose among them on \
                 what they give up.\n",
                label(best),
                a.ties.iter().map(label).collect::<Vec<_>>().join(", ")
            ));
        }
        out.push_str(&format!("\nWhat it gives up: {}.\n", gives_up(best)));
        for t in &a.ties {
            out.push_str(&format!("- {}: {}.\n", label(t), gives_up(t)));
        }
    }
    out.push_str(
        "\nRacy updates are never recommended: they lose counts under contention. \
         In-kernel costs are per counted event (filtered-out runs included); intervals are 95% \
         intervals over the repetitions (over one storm's slices when there is one). \
         Rows from guest kernels (timing = emulated) are left out: emulation's times are not \
         this CPU's; `bpfstorm compare --by-kernel` shows what they count.\n",
    );
    out
}
