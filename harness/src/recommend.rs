//! `bpfstorm recommend`: from a run, what to choose for three jobs (and,
//! after a run that measured them, counting per key at each key count,
//! streaming seen late, and counting under contention), why, and what the
//! choice gives up; an honest tie where intervals overlap. Where the
//! cheapest count and the cheapest read differ, how often user space reads
//! decides between them: the break-even is said.

use bpfstorm_common::{gives_up, MapKind, ReadPath, Wakeup};

use crate::aggregate::{aggregate, Aggregate, Interval, Ranking};
use crate::export::csv::{Row, Timing};
use crate::export::escape::{name, terminal};
use crate::hot::Method;

/// One job a counter can be picked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// An exact count at the lowest in-kernel cost.
    ExactCount,
    /// An exact count that user space reads cheaply.
    CheapRead,
    /// An exact count at each of this many keys (a run with `--keys`),
    /// every event counted (no key refused for want of room).
    PerKey(u32),
    /// Every event delivered to user space, which is woken as records come.
    Streaming,
    /// Every event delivered to user space, which may see records late
    /// (woken in batches, or polling): asked only of a run that measured
    /// such a buffer.
    StreamingDeferred,
    /// An exact count that stays cheapest with the most workers a sweep
    /// ran at once (asked only of a run with `--workers sweep` or a list).
    Contended,
}

impl Goal {
    /// The heading; under contention it names the count ranked at, from
    /// the `best` cell when there is one.
    fn title(self, best: Option<&Aggregate>) -> String {
        match (self, best) {
            (Goal::ExactCount, _) => "Exact counting at the lowest in-kernel cost".into(),
            (Goal::CheapRead, _) => "Exact counting with the cheapest read from user space".into(),
            (Goal::PerKey(keys), _) => format!("Exact counting per key ({keys} keys)"),
            (Goal::Streaming, _) => {
                "Per-event streaming to user space, woken as records come".into()
            }
            (Goal::StreamingDeferred, _) => {
                "Per-event streaming to user space, seen late (woken in batches, or polling)".into()
            }
            (Goal::Contended, Some(b)) => format!(
                "Exact counting under contention ({} workers at once on {} CPUs)",
                b.first.workers, b.first.cpus
            ),
            (Goal::Contended, None) => {
                "Exact counting under contention (the most workers the run measured at once)".into()
            }
        }
    }

    fn eligible(self, a: &Aggregate) -> bool {
        let wakeup = Wakeup::of(a.first.map, a.first.update);
        let delivered = a.dropped == Some(0);
        // Emulated times (guest kernels) say nothing about this CPU's cost.
        let keys = a.first.keys.get();
        a.is_ok()
            && a.exact == Some(true)
            && a.first.update.is_exact()
            && a.first.timing == Timing::Native
            && match (self, wakeup) {
                (Goal::ExactCount | Goal::CheapRead | Goal::Contended, w) => {
                    w.is_none() && keys == 1 && a.is_exact_counter()
                }
                // Exact once what found no room is counted in is not a
                // count of every event.
                (Goal::PerKey(k), _) => keys == k && delivered && a.first.expects_exact(),
                (Goal::Streaming, Some(w)) => delivered && !w.is_deferred(),
                (Goal::StreamingDeferred, Some(w)) => delivered && w.is_deferred(),
                (Goal::Streaming | Goal::StreamingDeferred, None) => false,
            }
    }

    /// The figure to minimise, with its 95% interval.
    fn figure(self, a: &Aggregate) -> Option<Interval> {
        match self {
            Goal::ExactCount
            | Goal::PerKey(_)
            | Goal::Streaming
            | Goal::StreamingDeferred
            | Goal::Contended => a.ns_per_event,
            Goal::CheapRead => a.read_us,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Goal::CheapRead => "us/read",
            _ => "ns/event",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Advice {
    pub goal: Goal,
    pub best: Option<Aggregate>,
    /// Cells whose interval overlaps the best one's: not distinguishable.
    pub ties: Vec<Aggregate>,
    /// The next cheapest eligible cell, what the best is set against.
    pub next: Option<Aggregate>,
    /// Counting per key only: the eligible cell read the fastest.
    pub cheapest_read: Option<Aggregate>,
}

/// The advice for every goal, and what it could not weigh.
#[derive(Debug, Clone)]
pub struct Recommendation {
    pub advice: Vec<Advice>,
    /// Whose cells were ranked (see [`Ranking`]).
    pub method: Method,
    /// The worker count ranked at, where the run swept several.
    pub workers: Option<u32>,
    /// Cells measured in guest kernels: never ranked (emulated times).
    pub emulated_cells: usize,
}

pub fn recommend(rows: &[Row]) -> Recommendation {
    let cells = aggregate(rows);
    let ranking = Ranking::of(&cells);
    let ranked = |goal: Goal, a: &Aggregate| match goal {
        Goal::Contended => ranking.admits_most_contended(a),
        _ => ranking.admits(a),
    };
    let swept = cells.iter().any(|a| ranking.admits_most_contended(a));
    let deferred = cells
        .iter()
        .any(|a| Wakeup::of(a.first.map, a.first.update).is_some_and(Wakeup::is_deferred));
    let mut key_counts: Vec<u32> = cells
        .iter()
        .map(|a| a.first.keys.get())
        .filter(|&k| k > 1)
        .collect();
    key_counts.sort_unstable();
    key_counts.dedup();
    let goals = [Goal::ExactCount, Goal::CheapRead]
        .into_iter()
        .chain(key_counts.into_iter().map(Goal::PerKey))
        .chain([Goal::Streaming])
        .chain(deferred.then_some(Goal::StreamingDeferred))
        .chain(swept.then_some(Goal::Contended));
    let advice = goals
        .map(|goal| {
            let mut eligible: Vec<(&Aggregate, Interval)> = cells
                .iter()
                .filter(|a| ranked(goal, a) && goal.eligible(a))
                .filter_map(|a| Some((a, goal.figure(a)?)))
                .collect();
            eligible.sort_by(|a, b| a.1.point.total_cmp(&b.1.point));
            let Some(&(best, best_figure)) = eligible.first() else {
                return Advice {
                    goal,
                    best: None,
                    ties: Vec::new(),
                    next: None,
                    cheapest_read: None,
                };
            };
            let ties = eligible[1..]
                .iter()
                .filter(|(_, figure)| figure.lo <= best_figure.hi)
                .map(|(a, _)| (*a).clone())
                .collect();
            let cheapest_read = match goal {
                Goal::PerKey(_) => eligible
                    .iter()
                    .filter_map(|(a, _)| Some((*a, a.read_us?)))
                    .min_by(|a, b| a.1.point.total_cmp(&b.1.point))
                    .map(|(a, _)| a.clone()),
                _ => None,
            };
            Advice {
                goal,
                best: Some(best.clone()),
                next: eligible.get(1).map(|(a, _)| (*a).clone()),
                ties,
                cheapest_read,
            }
        })
        .collect();
    Recommendation {
        advice,
        method: ranking.method,
        workers: ranking.swept_at(&cells),
        emulated_cells: cells
            .iter()
            .filter(|a| a.first.timing == Timing::Emulated)
            .count(),
    }
}

/// What counting as `a` does gives up: its map's and update mode's price,
/// its keys', and its read path's.
fn what_it_gives_up(a: &Aggregate) -> String {
    let r = &a.first;
    let keys = r.keys.get();
    let mut text = if keys > 1 {
        format!(
            "{}; a key per event from the task's tgid (mod {keys}), and a read that visits every \
             key",
            keyed_gives_up(r.map)
        )
    } else {
        gives_up(r.map, r.update)
    };
    if keys > 1 {
        let entries = r.max_entries.unwrap_or(keys);
        if r.map.evicts() && entries < r.map.entries_for(keys, r.cpus) {
            text.push_str(
                "; with fewer entries than its keys plus 128 per CPU, it evicts keys, counts \
                 and all, before it is full",
            );
        } else if entries < keys {
            text.push_str("; with fewer entries than keys, events find no slot (counted dropped)");
        }
    }
    match r.read {
        ReadPath::Syscall => {}
        ReadPath::Batch => text.push_str(
            "; read with BPF_MAP_LOOKUP_BATCH (kernel 5.6 and later), one syscall per 4096 keys",
        ),
        ReadPath::Mmap => text.push_str(
            "; the map is created mappable (BPF_F_MMAPABLE) and read by plain loads, no \
             syscall, which see each slot as it is then, not all of them at one instant",
        ),
    }
    text
}

/// What a map gives up when its count is spread over keys (its own
/// `gives_up` speaks of one key).
fn keyed_gives_up(map: MapKind) -> &'static str {
    match (map.inserts_keys(), map.is_per_cpu(), map.evicts()) {
        (false, false, _) => {
            "a slot per key, preallocated; CPUs contend only on a key they count at once"
        }
        (false, true, _) => {
            "a slot per key on every CPU, preallocated, and a read that sums every CPU's slot of \
             every key"
        }
        (true, false, false) => {
            "a hash lookup per event and an insert per new key; a full map refuses new keys"
        }
        (true, true, false) => {
            "memory per CPU for every key, a hash lookup per event and an insert per new key; a \
             full map refuses new keys"
        }
        (true, false, true) => {
            "a hash lookup and LRU bookkeeping per event; a full map evicts its least recently \
             used key, count included"
        }
        (true, true, true) => {
            "memory per CPU for every key, a hash lookup and LRU bookkeeping per event; a full \
             map evicts keys, counts included"
        }
    }
}

/// The best cell for `goal`, where the run has one.
fn best_for(r: &Recommendation, goal: Goal) -> Option<&Aggregate> {
    r.advice.iter().find(|a| a.goal == goal)?.best.as_ref()
}

/// Per key or one counter: what spreading the count over `keys` keys
/// costs against the cheapest single counter, and the cheapest read there.
fn per_key_vs_one(r: &Recommendation, a: &Advice, keys: u32, style: Style) -> Option<String> {
    let keyed = a.best.as_ref()?;
    let one = best_for(r, Goal::ExactCount)?;
    let (k, o) = (keyed.ns_per_event?, one.ns_per_event?);
    let cost = match k.apart_from(&o) {
        Some((ratio, u)) => format!("costs {ratio:.2} +- {u:.2} times"),
        None => "is within the noise of".to_string(),
    };
    let live = keyed.first.keys_live.map_or(String::new(), |n| {
        format!(" ({n} of them live at its last read)")
    });
    let mut text = format!(
        "{}: {} at {keys} keys{live} {cost} the cheapest single counter, {} ({} ns/event).",
        style.strong("Per key or one counter"),
        style.label(keyed),
        style.label(one),
        Interval::text(Some(o), 1)
    );
    if let Some(read) = &a.cheapest_read {
        text.push_str(&format!(
            " Read fastest at {keys} keys: {}, {} us/read (the single counter: {} us/read).",
            style.label(read),
            Interval::text(read.read_us, 2),
            Interval::text(one.read_us, 2)
        ));
    }
    text.push('\n');
    Some(text)
}

/// Read rarely or often: where the cheapest count per event and the
/// cheapest read are different cells, how many events per read make the
/// one cost as much as the other in all.
fn read_often(r: &Recommendation, style: Style) -> Option<String> {
    let counts = best_for(r, Goal::ExactCount)?;
    let reads = best_for(r, Goal::CheapRead)?;
    // Set side by side only where nothing else differs: a hook's or a
    // loader's cost is not the counter's.
    let (a, b) = (&counts.first, &reads.first);
    if (&a.backend, a.attach, a.workers) != (&b.backend, b.attach, b.workers) {
        return None;
    }
    let (ce, re) = (counts.ns_per_event?, reads.ns_per_event?);
    let (cr, rr) = (counts.read_us?, reads.read_us?);
    // Dearer per event and cheaper per read, or there is nothing to weigh.
    if re.point <= ce.point || rr.point >= cr.point {
        return None;
    }
    let events_per_read = (cr.point - rr.point) * 1e3 / (re.point - ce.point);
    let noise = match (re.overlaps(&ce), rr.overlaps(&cr)) {
        (false, false) => "",
        (true, _) => " Their ns/event intervals overlap: where it lies is inside the noise.",
        (false, true) => " Their read intervals overlap: where it lies is inside the noise.",
    };
    Some(format!(
        "{}: {} costs {} ns/event and {} us/read; {} costs {} ns/event and {} us/read. Read \
         more often than once every {events_per_read:.0} events, the second costs less in all; \
         less often, the first (from the medians).{noise}\n",
        style.strong("Read rarely or often"),
        style.label(counts),
        Interval::text(Some(ce), 1),
        Interval::text(Some(cr), 2),
        style.label(reads),
        Interval::text(Some(re), 1),
        Interval::text(Some(rr), 2),
    ))
}

/// Markdown, or plain text for a terminal (no markup characters to read
/// past; names shown as they are, control characters made visible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Markdown,
    Terminal,
}

impl Style {
    fn heading(self, level: usize, title: &str) -> String {
        match self {
            Style::Markdown => format!("{} {title}\n", "#".repeat(level)),
            Style::Terminal => {
                let rule = if level == 1 { "=" } else { "-" };
                format!("{title}\n{}\n", rule.repeat(title.chars().count()))
            }
        }
    }

    fn strong(self, s: &str) -> String {
        match self {
            Style::Markdown => format!("**{s}**"),
            Style::Terminal => s.to_string(),
        }
    }

    fn code(self, s: &str) -> String {
        match self {
            Style::Markdown => format!("`{s}`"),
            Style::Terminal => s.to_string(),
        }
    }

    fn label(self, a: &Aggregate) -> String {
        match self {
            Style::Markdown => a.label(|s| name(s).into_owned()),
            Style::Terminal => a.label(terminal),
        }
    }
}

pub fn render_markdown(r: &Recommendation) -> String {
    render(r, Style::Markdown)
}

pub fn render_terminal(r: &Recommendation) -> String {
    render(r, Style::Terminal)
}

fn render(r: &Recommendation, style: Style) -> String {
    let mut out = style.heading(1, "Recommendation");
    for a in &r.advice {
        out.push('\n');
        out.push_str(&style.heading(2, &a.goal.title(a.best.as_ref())));
        out.push('\n');
        let Some(best) = &a.best else {
            out.push_str("No eligible cell in this run (none was measured exact for this job).\n");
            continue;
        };
        let (m, lo, hi) = a
            .goal
            .figure(best)
            .map_or(Default::default(), |i| (i.point, i.lo, i.hi));
        let unit = a.goal.unit();
        if a.ties.is_empty() {
            let next = a.next.as_ref().and_then(|next| {
                let (r, u) = a.goal.figure(next)?.ratio_to(&a.goal.figure(best)?)?;
                Some(format!(
                    "{r:.2} +- {u:.2} times cheaper than the next, {} ({}), and ",
                    style.label(next),
                    Interval::text(a.goal.figure(next), 1)
                ))
            });
            out.push_str(&format!(
                "Choose {}: {m:.1} {unit} [95% interval {lo:.1}, {hi:.1}], {}below every other \
                 eligible cell's interval.\n\nWhat it gives up: {}.\n",
                style.strong(&style.label(best)),
                next.unwrap_or_default(),
                what_it_gives_up(best)
            ));
        } else {
            out.push_str(&format!(
                "{}: {} has the lowest figure ({m:.1} {unit} [{lo:.1}, {hi:.1}]), but its \
                 interval overlaps {}: at this noise they cannot be ranked; choose among them on \
                 what they give up.\n\nWhat each gives up:\n",
                style.strong("Tie"),
                style.label(best),
                a.ties
                    .iter()
                    .map(|t| style.label(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            // Backends of one strategy give up the same: one line for them.
            let mut lines: Vec<(String, Vec<String>)> = Vec::new();
            for t in std::iter::once(best).chain(&a.ties) {
                let text = what_it_gives_up(t);
                match lines.iter_mut().find(|(known, _)| *known == text) {
                    Some((_, labels)) => labels.push(style.label(t)),
                    None => lines.push((text, vec![style.label(t)])),
                }
            }
            for (text, labels) in lines {
                out.push_str(&format!("- {}: {text}.\n", labels.join(", ")));
            }
        }
        let beside = match a.goal {
            Goal::CheapRead => read_often(r, style),
            Goal::PerKey(keys) => per_key_vs_one(r, a, keys, style),
            _ => None,
        };
        if let Some(text) = beside {
            out.push('\n');
            out.push_str(&text);
        }
    }
    out.push_str(&format!(
        "\nRanked by the {} method's cells{}{}. Racy updates are never recommended: they lose \
         counts under contention. In-kernel costs are per counted event (filtered-out runs \
         included, bpf_stats' own clock cost taken out); intervals are 95% intervals over the \
         hot rounds, the repetitions, or one storm's slices when there is one.",
        r.method,
        match r.method {
            Method::Hot => " (warm, and measured until precise)",
            Method::Storm => "",
        },
        r.workers.map_or(String::new(), |n| format!(
            " at {n} workers (the other worker counts of the sweep show how each strategy \
             scales, in the contention table)"
        ))
    ));
    if r.emulated_cells > 0 {
        out.push_str(&format!(
            " The {} cell(s) from guest kernels (timing = emulated) are left out: emulation's \
             times are not this CPU's; {} shows what they count.",
            r.emulated_cells,
            style.code("bpfstorm compare --by-kernel")
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use bpfstorm_common::UpdateMode;

    use super::*;
    use crate::export::csv::KeyCount;

    fn cell(map: MapKind, update: UpdateMode, ns: f64, lo: f64, hi: f64) -> Row {
        Row {
            backend: "libbpf".into(),
            map,
            update,
            exact: Some(true),
            dropped: Some(0),
            ns_per_event_median: Some(ns),
            ns_per_event_ci95_lo: Some(lo),
            ns_per_event_ci95_hi: Some(hi),
            ..Row::default()
        }
    }

    fn maps(cells: &[Aggregate]) -> Vec<MapKind> {
        cells.iter().map(|a| a.first.map).collect()
    }

    fn pick(advice: &Advice) -> (Option<MapKind>, Vec<MapKind>) {
        (
            advice.best.as_ref().map(|a| a.first.map),
            maps(&advice.ties),
        )
    }

    #[test]
    fn the_lowest_exact_native_counter_wins_and_overlapping_ones_tie() {
        let rows = [
            cell(MapKind::Array, UpdateMode::Atomic, 100.0, 90.0, 110.0),
            cell(MapKind::PercpuArray, UpdateMode::Percpu, 50.0, 45.0, 55.0),
            cell(MapKind::Hash, UpdateMode::Atomic, 54.0, 52.0, 60.0),
            cell(MapKind::PercpuHash, UpdateMode::Percpu, 80.0, 70.0, 90.0),
            // Cheaper, but never recommended: racy, emulated, or a stream.
            cell(MapKind::Array, UpdateMode::Racy, 5.0, 4.0, 6.0),
            Row {
                timing: Timing::Emulated,
                ..cell(MapKind::Hash, UpdateMode::Atomic, 1.0, 1.0, 1.0)
            },
            cell(MapKind::Ringbuf, UpdateMode::Stream, 10.0, 9.0, 11.0),
        ];
        let r = recommend(&rows);
        let advice = &r.advice;
        assert_eq!(advice[0].goal, Goal::ExactCount);
        assert_eq!(
            pick(&advice[0]),
            (Some(MapKind::PercpuArray), vec![MapKind::Hash])
        );
        assert_eq!(advice[2].goal, Goal::Streaming);
        assert_eq!(pick(&advice[2]), (Some(MapKind::Ringbuf), vec![]));
        assert_eq!(r.emulated_cells, 1);
        assert!(render_markdown(&r).contains("The 1 cell(s) from guest kernels"));
    }

    #[test]
    fn a_sweep_adds_the_choice_under_contention_at_its_most_workers() {
        let hot = |map, update, workers, ns: f64| Row {
            method: Method::Hot,
            cpus: 2,
            workers,
            ..cell(map, update, ns, ns - 2.0, ns + 2.0)
        };
        let one_count = [
            hot(MapKind::Array, UpdateMode::Atomic, 2, 60.0),
            hot(MapKind::PercpuArray, UpdateMode::Percpu, 2, 70.0),
        ];
        let goals: Vec<Goal> = recommend(&one_count)
            .advice
            .iter()
            .map(|a| a.goal)
            .collect();
        assert_eq!(goals, [Goal::ExactCount, Goal::CheapRead, Goal::Streaming]);

        let mut sweep = one_count.to_vec();
        sweep.extend([
            hot(MapKind::Array, UpdateMode::Atomic, 4, 150.0),
            hot(MapKind::PercpuArray, UpdateMode::Percpu, 4, 72.0),
        ]);
        let r = recommend(&sweep);
        assert_eq!(
            pick(&r.advice[0]),
            (Some(MapKind::Array), vec![]),
            "at 2 workers"
        );
        assert_eq!(r.advice[3].goal, Goal::Contended);
        assert_eq!(
            pick(&r.advice[3]),
            (Some(MapKind::PercpuArray), vec![]),
            "at 4 workers"
        );
        assert!(
            render_terminal(&r)
                .contains("Exact counting under contention (4 workers at once on 2 CPUs)"),
            "{}",
            render_terminal(&r)
        );
    }

    #[test]
    fn a_stream_that_dropped_events_is_not_recommended() {
        let rows = [
            Row {
                dropped: Some(3),
                ..cell(MapKind::Ringbuf, UpdateMode::Stream, 10.0, 9.0, 11.0)
            },
            cell(
                MapKind::PerfEventArray,
                UpdateMode::Stream,
                30.0,
                25.0,
                35.0,
            ),
        ];
        assert_eq!(
            pick(&recommend(&rows).advice[2]),
            (Some(MapKind::PerfEventArray), vec![])
        );
    }

    #[test]
    fn buffers_read_late_are_a_choice_of_their_own_with_what_they_give_up() {
        let rows = [
            cell(MapKind::Ringbuf, UpdateMode::Stream, 650.0, 600.0, 700.0),
            cell(MapKind::Ringbuf, UpdateMode::NoWakeup, 170.0, 160.0, 180.0),
            cell(
                MapKind::PerfEventArray,
                UpdateMode::BatchWakeup,
                800.0,
                700.0,
                900.0,
            ),
        ];
        let r = recommend(&rows);
        let goals: Vec<Goal> = r.advice.iter().map(|a| a.goal).collect();
        assert_eq!(
            goals,
            [
                Goal::ExactCount,
                Goal::CheapRead,
                Goal::Streaming,
                Goal::StreamingDeferred
            ]
        );
        // Woken as records come: the no_wakeup ring is not a candidate.
        let best = |a: &Advice| a.best.as_ref().map(|b| (b.first.map, b.first.update));
        assert_eq!(
            best(&r.advice[2]),
            Some((MapKind::Ringbuf, UpdateMode::Stream))
        );
        assert_eq!(
            best(&r.advice[3]),
            Some((MapKind::Ringbuf, UpdateMode::NoWakeup))
        );
        assert_eq!(
            r.advice[3].next.as_ref().map(|n| n.first.update),
            Some(UpdateMode::BatchWakeup)
        );
        let text = render_terminal(&r);
        assert!(
            text.contains(&gives_up(MapKind::Ringbuf, UpdateMode::NoWakeup)),
            "{text}"
        );
    }

    #[test]
    fn the_cheapest_read_is_ranked_by_read_time_alone() {
        let read = |map, update, us: f64| Row {
            read_us_median: Some(us),
            read_us_ci95_lo: Some(us - 0.1),
            read_us_ci95_hi: Some(us + 0.1),
            ..cell(map, update, 100.0, 90.0, 110.0)
        };
        let rows = [
            read(MapKind::PercpuArray, UpdateMode::Percpu, 5.0),
            read(MapKind::Array, UpdateMode::Atomic, 2.0),
        ];
        let r = recommend(&rows);
        assert_eq!(r.advice[1].goal, Goal::CheapRead);
        assert_eq!(pick(&r.advice[1]), (Some(MapKind::Array), vec![]));
        let md = render_markdown(&r);
        assert!(
            md.contains("Choose **libbpf tp_sys_enter_execve array/atomic**: 2.0 us/read [95% interval 1.9, 2.1]"),
            "{md}"
        );
        assert!(md.contains(MapKind::Array.gives_up()), "{md}");
    }

    #[test]
    fn per_key_counting_is_ranked_apart_and_set_against_one_counter() {
        let keyed = |map, keys, max_entries, ns: f64, dropped| Row {
            keys: KeyCount(keys),
            max_entries: Some(max_entries),
            dropped: Some(dropped),
            read_us_median: Some(ns / 10.0),
            read_us_ci95_lo: Some(ns / 10.0 - 1.0),
            read_us_ci95_hi: Some(ns / 10.0 + 1.0),
            ..cell(map, UpdateMode::Atomic, ns, ns - 5.0, ns + 5.0)
        };
        let rows = [
            cell(MapKind::Array, UpdateMode::Atomic, 50.0, 45.0, 55.0),
            keyed(MapKind::Hash, 64, 64, 120.0, 0),
            keyed(MapKind::Array, 64, 64, 60.0, 0),
            // Cheapest, but a full hash refused keys: not every event counted.
            keyed(MapKind::Hash, 4096, 16, 20.0, 7),
            keyed(MapKind::Array, 4096, 4096, 90.0, 0),
        ];
        let r = recommend(&rows);
        let goals: Vec<Goal> = r.advice.iter().map(|a| a.goal).collect();
        assert_eq!(
            goals,
            [
                Goal::ExactCount,
                Goal::CheapRead,
                Goal::PerKey(64),
                Goal::PerKey(4096),
                Goal::Streaming
            ]
        );
        assert_eq!(
            pick(&r.advice[0]),
            (Some(MapKind::Array), vec![]),
            "one key"
        );
        assert_eq!(pick(&r.advice[2]), (Some(MapKind::Array), vec![]));
        assert_eq!(pick(&r.advice[3]), (Some(MapKind::Array), vec![]));
        let md = render_markdown(&r);
        assert!(
            md.contains(
                "**Per key or one counter**: libbpf tp_sys_enter_execve array/atomic/k64 at 64 \
                 keys is within the noise of the cheapest single counter"
            ),
            "{md}"
        );
        assert!(
            md.contains("array/atomic/k4096 at 4096 keys costs 1.80 +- "),
            "{md}"
        );
        assert!(
            md.contains(
                "Read fastest at 64 keys: libbpf tp_sys_enter_execve array/atomic/k64, 6.00"
            ),
            "{md}"
        );
        assert!(md.contains("a read that visits every key"), "{md}");
    }

    #[test]
    fn the_break_even_of_reads_is_said_where_count_and_read_differ() {
        let both = |map, update, ns: f64, us: f64| Row {
            read_us_median: Some(us),
            read_us_ci95_lo: Some(us * 0.9),
            read_us_ci95_hi: Some(us * 1.1),
            ..cell(map, update, ns, ns - 2.0, ns + 2.0)
        };
        let rows = [
            both(MapKind::PercpuArray, UpdateMode::Percpu, 50.0, 7.0),
            both(MapKind::Array, UpdateMode::Atomic, 100.0, 2.0),
        ];
        let text = render_terminal(&recommend(&rows));
        // (7 - 2) us / (100 - 50) ns = 100 events per read.
        assert!(
            text.contains("Read more often than once every 100 events, the second costs less"),
            "{text}"
        );
        let same = [both(MapKind::Array, UpdateMode::Atomic, 100.0, 2.0)];
        assert!(!render_terminal(&recommend(&same)).contains("Read rarely or often"));
    }

    #[test]
    fn a_tie_names_every_cell_and_what_each_gives_up() {
        let rows = [
            cell(MapKind::Array, UpdateMode::Atomic, 50.0, 40.0, 60.0),
            cell(MapKind::Hash, UpdateMode::Atomic, 55.0, 45.0, 65.0),
        ];
        let md = render_markdown(&recommend(&rows));
        assert!(
            md.contains("**Tie**: libbpf tp_sys_enter_execve array/atomic has the lowest figure (50.0 ns/event [40.0, 60.0]), but its interval overlaps libbpf tp_sys_enter_execve hash/atomic"),
            "{md}"
        );
        for (map, label) in [(MapKind::Array, "array"), (MapKind::Hash, "hash")] {
            assert!(
                md.contains(&format!(
                    "\n- libbpf tp_sys_enter_execve {label}/atomic: {}.",
                    map.gives_up()
                )),
                "every option is a bullet, the best one too: {md}"
            );
        }
        assert!(!md.contains("guest kernels"), "none were measured: {md}");
    }

    #[test]
    fn the_terminal_rendering_has_no_markup() {
        let rows = [
            cell(MapKind::Array, UpdateMode::Atomic, 50.0, 40.0, 60.0),
            cell(MapKind::Hash, UpdateMode::Atomic, 55.0, 45.0, 65.0),
            Row {
                backend: "evil\x1b[2J".into(),
                ..cell(MapKind::Array, UpdateMode::Atomic, 52.0, 42.0, 62.0)
            },
            Row {
                timing: Timing::Emulated,
                ..cell(MapKind::Hash, UpdateMode::Atomic, 1.0, 1.0, 1.0)
            },
        ];
        let text = render_terminal(&recommend(&rows));
        assert!(
            text.starts_with("Recommendation\n==============\n"),
            "{text}"
        );
        assert!(
            text.contains("Exact counting at the lowest in-kernel cost\n-------------------------------------------\n"),
            "{text}"
        );
        assert!(
            text.contains("Tie: libbpf tp_sys_enter_execve array/atomic"),
            "{text}"
        );
        for markup in ["#", "**", "`"] {
            assert!(!text.contains(markup), "{markup} in {text}");
        }
        // One line for the strategy's backends, the escaped name among them.
        assert!(
            text.contains(
                "- libbpf tp_sys_enter_execve array/atomic, evil\\x1b[2J tp_sys_enter_execve \
                 array/atomic: "
            ),
            "{text}"
        );
        assert!(
            text.contains("bpfstorm compare --by-kernel shows"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "{text}");
    }

    #[test]
    fn no_eligible_cell_is_said_plainly() {
        let rows = [Row {
            exact: Some(false),
            ..cell(MapKind::Array, UpdateMode::Atomic, 50.0, 40.0, 60.0)
        }];
        let r = recommend(&rows);
        assert!(r
            .advice
            .iter()
            .all(|a| a.best.is_none() && a.ties.is_empty()));
        let md = render_markdown(&r);
        assert_eq!(
            md.matches("No eligible cell in this run").count(),
            3,
            "{md}"
        );
    }
}
