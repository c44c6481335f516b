//! A run as JSON (`--export-json`): every row as the CSV has it, and the
//! cells folded over their repetitions as the report shows them.

use serde::Serialize;

use super::csv::{Row, Status, Timing};
use crate::aggregate::{aggregate, Aggregate, Interval};

/// The layout of this document; the rows carry the CSV's own
/// `schema_version`. v2: cells name their method, workers, wakeup and read
/// path, which tell cells of one strategy apart; v3: the keys a count is
/// spread over, its map's entries and the keys live at its last read; v4:
/// its startup (from nothing to a counting program).
pub const SCHEMA_VERSION: u32 = 4;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    rows: &'a [Row],
    cells: Vec<Cell>,
}

/// A timing and its 95% interval.
#[derive(Serialize)]
struct Bounds {
    point: f64,
    lo: f64,
    hi: f64,
}

impl From<Interval> for Bounds {
    fn from(i: Interval) -> Bounds {
        Bounds {
            point: i.point,
            lo: i.lo,
            hi: i.hi,
        }
    }
}

/// One cell over its repetitions; see [`Aggregate`].
#[derive(Serialize)]
struct Cell {
    host: String,
    kernel: String,
    timing: Timing,
    backend: String,
    attach: String,
    map: String,
    update: String,
    wakeup: String,
    read: String,
    keys: u32,
    max_entries: Option<u32>,
    keys_live: Option<u64>,
    filter: String,
    method: String,
    workers: u32,
    target: String,
    spawn: String,
    repetitions: usize,
    status: Status,
    error: String,
    issued: Option<u64>,
    counted: Option<u64>,
    expected: Option<u64>,
    dropped: Option<u64>,
    missing: Option<i64>,
    exact: Option<bool>,
    ns_per_run: Option<Bounds>,
    ns_per_event: Option<Bounds>,
    read_us: Option<Bounds>,
    open_ms: Option<f64>,
    load_ms: Option<f64>,
    attach_ms: Option<f64>,
    startup_ms: Option<f64>,
    /// What the timing intervals are.
    intervals: String,
    e2e_ns_per_exec: Option<Bounds>,
    outlier_repetitions: Vec<u32>,
}

impl From<Aggregate> for Cell {
    fn from(a: Aggregate) -> Cell {
        let r = a.first;
        Cell {
            host: r.host,
            kernel: r.kernel,
            timing: r.timing,
            backend: r.backend,
            attach: r.attach.to_string(),
            map: r.map.to_string(),
            update: r.update.to_string(),
            wakeup: r.wakeup,
            read: r.read.to_string(),
            keys: r.keys.get(),
            max_entries: r.max_entries,
            keys_live: r.keys_live,
            filter: r.filter,
            method: r.method.to_string(),
            workers: r.workers,
            target: r.target,
            spawn: r.spawn,
            repetitions: a.repetitions,
            status: a.status,
            error: a.error,
            issued: a.issued,
            counted: a.counted,
            expected: a.expected,
            dropped: a.dropped,
            missing: a.missing,
            exact: a.exact,
            ns_per_run: a.ns_per_run.map(Bounds::from),
            ns_per_event: a.ns_per_event.map(Bounds::from),
            read_us: a.read_us.map(Bounds::from),
            open_ms: a.open_ms,
            load_ms: a.load_ms,
            attach_ms: a.attach_ms,
            startup_ms: a.startup_ms,
            intervals: a.bracket.describe(),
            e2e_ns_per_exec: a.e2e_ns_per_exec.map(|m| Bounds {
                point: m.mean,
                lo: m.lo,
                hi: m.hi,
            }),
            outlier_repetitions: a.outliers,
        }
    }
}

/// The JSON document of `rows`, indented.
pub fn render(rows: &[Row]) -> Result<String, serde_json::Error> {
    let document = Document {
        schema_version: SCHEMA_VERSION,
        rows,
        cells: aggregate(rows).into_iter().map(Cell::from).collect(),
    };
    let mut json = serde_json::to_string_pretty(&document)?;
    json.push('\n');
    Ok(json)
}

#[cfg(test)]
mod tests {
    use bpfstorm_common::{MapKind, UpdateMode};

    use super::*;

    #[test]
    fn rows_and_folded_cells_round_trip_through_json() {
        let row = |repetition, ns: f64| Row {
            schema_version: 3,
            backend: "libbpf".into(),
            map: MapKind::PercpuArray,
            update: UpdateMode::Percpu,
            repetition,
            counted: Some(10),
            ns_per_run_median: Some(ns),
            ns_per_run_ci95_lo: Some(ns - 1.0),
            ns_per_run_ci95_hi: Some(ns + 1.0),
            startup_ms: Some(ns / 2.0),
            ..Row::default()
        };
        let rows = [row(1, 40.0), row(2, 42.0)];
        let json: serde_json::Value = serde_json::from_str(&render(&rows).unwrap()).unwrap();
        assert_eq!(json["schema_version"], SCHEMA_VERSION);
        assert_eq!(json["rows"].as_array().unwrap().len(), 2);
        assert_eq!(json["rows"][1]["repetition"], 2);
        assert_eq!(json["rows"][0]["map"], "percpu_array");
        let cells = json["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 1, "two repetitions of one cell");
        assert_eq!(cells[0]["repetitions"], 2);
        assert_eq!(cells[0]["counted"], 20);
        assert_eq!(cells[0]["ns_per_run"]["point"], 41.0);
        assert_eq!(cells[0]["startup_ms"], 20.5, "the median of 20 and 21");
        assert_eq!(cells[0]["timing"], "native");
        assert_eq!(cells[0]["status"], rows[0].status.name());
    }
}
