//! Reading CSVs back (compare, recommend, a guest's results): run schemas
//! v1 to the current one, every value checked after it is read (names
//! against the names bpfstorm writes, times finite and not negative,
//! intervals in order, counts that sum without overflow), and every problem
//! reported with the file, the line (as an editor counts it, CRLF or not),
//! the column by name and what to do.
//!
//! Only regular files are read, never through a symbolic link, and at most
//! [`MAX_CSV_BYTES`] of them: a FIFO, a device or a growing file is refused
//! at once instead of blocking or filling memory, and Ctrl-C stops a read.

use std::fmt::Display;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bpfstorm_common::{AttachPoint, MapKind, ReadPath, UpdateMode, Wakeup};
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::de::{DeserializeOwned, IntoDeserializer};
use thiserror::Error;

use super::csv::{round, wakeup_column, ProbeRow, Row, Status, Timing, SCHEMA_VERSION};
use super::escape;
use crate::aggregate::try_aggregate;
use crate::hot::Method;
use crate::semantics::SemanticsRow;
use crate::storm::{SpawnMethod, Target};

/// The largest CSV read back: far above any run's (a row is under 1 KiB),
/// far below what would strain memory.
pub const MAX_CSV_BYTES: u64 = 64 << 20;

/// Bytes read between two looks at Ctrl-C.
const CHUNK: u64 = 1 << 20;

/// Rows parsed between two looks at Ctrl-C.
const ROWS_PER_CHECK: usize = 1024;

/// The longest value quoted back in an error.
const QUOTED_CHARS: usize = 60;

fn shown(path: &Path) -> String {
    escape::terminal(&path.display().to_string())
}

/// A value from a file, quoted in an error: control characters made
/// visible, and cut short.
fn quoted(value: &str) -> String {
    escape::terminal(&escape::shorten(value, QUOTED_CHARS))
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", shown(path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is a symbolic link: name the file it points to", shown(path))]
    Symlink { path: PathBuf },
    #[error(
        "{} is {kind}, not a regular file: name a CSV file that bpfstorm wrote",
        shown(path)
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{} is larger than {} MiB, the most bpfstorm reads back: is it the right file?",
        shown(path),
        cap >> 20
    )]
    TooLarge { path: PathBuf, cap: u64 },
    #[error("reading {} was interrupted", shown(path))]
    Interrupted { path: PathBuf },
    #[error(
        "{} is not a bpfstorm run CSV: it has no `schema_version` column",
        shown(path)
    )]
    NotRun { path: PathBuf },
    #[error(
        "{}, line {line}: schema version `{found}`, but this bpfstorm reads versions \
         1 to {SCHEMA_VERSION} only: re-run `bpfstorm run`, or read it with the bpfstorm that wrote it",
        shown(path)
    )]
    Version {
        path: PathBuf,
        line: u64,
        found: String,
    },
    #[error(
        "{}, line {line}: {message} (truncated or edited by hand?)",
        shown(path)
    )]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// A value that is not one this bpfstorm writes in its column.
    #[error(
        "{}, line {line}, column `{column}`: {message} (edited by hand?)",
        shown(path)
    )]
    Invalid {
        path: PathBuf,
        line: u64,
        column: String,
        message: String,
    },
    /// A count whose sum over a cell's repetitions does not fit in 64 bits.
    #[error(
        "{}, line {line}, column `{column}`: summed over the cell's repetitions it \
         overflows a 64-bit count (edited by hand?)",
        shown(path)
    )]
    Overflow {
        path: PathBuf,
        line: u64,
        column: &'static str,
    },
    #[error("{} holds no rows", shown(path))]
    Empty { path: PathBuf },
}

/// A problem with one value of a row, found once the row was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub column: &'static str,
    pub message: String,
}

/// A row type read back from a CSV: its values are checked (and normalised,
/// e.g. `-0` to `0`) before anything uses them.
pub trait Checked {
    /// The columns that hold a typed name (a strategy, a status), each with
    /// its parser: serde's errors for them do not say the column, so a row
    /// that fails to read is looked at again with these.
    const NAMED: &'static [(&'static str, Parse)] = &[];

    fn check(&mut self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// Whether a value reads as a typed name; why not.
pub type Parse = fn(&str) -> Result<(), String>;

/// A name parsed as the CLI parses it.
fn parsed<T: FromStr>(value: &str) -> Result<(), String>
where
    T::Err: Display,
{
    value.parse::<T>().map(drop).map_err(|e| e.to_string())
}

/// A name read as serde reads it from a CSV.
fn variant<T: DeserializeOwned>(value: &str) -> Result<(), String> {
    let d: StrDeserializer<'_, ValueError> = value.into_deserializer();
    T::deserialize(d).map(drop).map_err(|e| e.to_string())
}

/// The first typed name in `record` that does not read, with its column.
fn named_problem<T: Checked>(
    headers: &::csv::StringRecord,
    record: &::csv::StringRecord,
) -> Option<(String, String)> {
    T::NAMED.iter().find_map(|&(column, parse)| {
        let i = headers.iter().position(|h| h == column)?;
        parse(record.get(i)?)
            .err()
            .map(|why| (column.to_string(), quoted_message(&why)))
    })
}

/// The values a semantics row's `status` takes.
pub const SEMANTICS_STATUSES: &[&str] = &["ok", "refused", "error"];
/// The values `filter` takes.
pub const FILTERS: &[&str] = &["all", "cgroup"];

fn one_of(column: &'static str, value: &str, allowed: &[&str]) -> Result<(), Invalid> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Invalid {
            column,
            message: format!(
                "unknown value `{}`; expected one of: {}",
                quoted(value),
                allowed.join(", ")
            ),
        })
    }
}

/// `value` (a strategy name of kind `what`) is one `map` takes.
fn taken_by_map<T: Copy + PartialEq + Display>(
    column: &'static str,
    what: &str,
    map: MapKind,
    value: T,
    taken: &[T],
) -> Result<(), Invalid> {
    if taken.contains(&value) {
        return Ok(());
    }
    let taken: Vec<String> = taken.iter().map(T::to_string).collect();
    Err(Invalid {
        column,
        message: format!(
            "`{value}` is not {what} of {map}, which takes: {}",
            taken.join(", ")
        ),
    })
}

/// Every name of a kind (attach points, map kinds, ...).
fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|&t| name(t)).collect()
}

/// A time, size or rate: finite and not negative (`-0` becomes `0`).
fn non_negative(column: &'static str, value: &mut Option<f64>) -> Result<(), Invalid> {
    match *value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(Invalid {
            column,
            message: format!("`{v}` is not a finite number >= 0"),
        }),
        // -0.0 + 0.0 is +0.0.
        Some(v) => {
            *value = Some(v + 0.0);
            Ok(())
        }
        None => Ok(()),
    }
}

fn finite(column: &'static str, value: Option<f64>) -> Result<(), Invalid> {
    match value {
        Some(v) if !v.is_finite() => Err(Invalid {
            column,
            message: format!("`{v}` is not a finite number"),
        }),
        _ => Ok(()),
    }
}

/// A median and its interval: `lo <= median <= hi`.
fn ordered(
    column: &'static str,
    median: Option<f64>,
    lo: Option<f64>,
    hi: Option<f64>,
) -> Result<(), Invalid> {
    match (median, lo, hi) {
        (Some(m), Some(lo), Some(hi)) if !(lo <= m && m <= hi) => Err(Invalid {
            column,
            message: format!("median {m} outside its 95% interval [{lo}, {hi}]"),
        }),
        _ => Ok(()),
    }
}

fn schema_version(value: u32) -> Result<(), Invalid> {
    if (1..=SCHEMA_VERSION).contains(&value) {
        Ok(())
    } else {
        Err(Invalid {
            column: "schema_version",
            message: format!("version `{value}`, but this bpfstorm reads 1 to {SCHEMA_VERSION}"),
        })
    }
}

/// The columns a run row and a probe row share that are not typed (timing,
/// attach and map are checked as they are read).
fn check_cell(version: u32, backend: &str) -> Result<(), Invalid> {
    schema_version(version)?;
    one_of("backend", backend, crate::backends::NAMES)
}

impl Row {
    /// `keys` at least 1, above 1 only on a map that takes keys, which
    /// then names its map's entries (at least 1).
    fn check_keys(&self) -> Result<(), Invalid> {
        let keys = self.keys.get();
        let (column, message) = match (keys, self.max_entries) {
            (0, _) => ("keys", "0 keys: a count has at least one".to_string()),
            (2.., _) if !self.map.takes_keys() => (
                "keys",
                format!(
                    "{} keys on {}: only the maps looked up by key take keys",
                    keys, self.map
                ),
            ),
            (2.., None) => (
                "max_entries",
                format!("empty with {keys} keys: a count over keys names its map's size"),
            ),
            (_, Some(0)) => ("max_entries", "a map of 0 entries".to_string()),
            _ => return Ok(()),
        };
        Err(Invalid { column, message })
    }
}

impl Checked for Row {
    const NAMED: &'static [(&'static str, Parse)] = &[
        ("timing", variant::<Timing>),
        ("attach", parsed::<AttachPoint>),
        ("map", parsed::<MapKind>),
        ("update", parsed::<UpdateMode>),
        ("read", parsed::<ReadPath>),
        ("status", variant::<Status>),
        ("method", parsed::<Method>),
    ];

    fn check(&mut self) -> Result<(), Invalid> {
        check_cell(self.schema_version, &self.backend)?;
        one_of("filter", &self.filter, FILTERS)?;
        taken_by_map(
            "update",
            "an update mode",
            self.map,
            self.update,
            self.map.valid_updates(),
        )?;
        taken_by_map(
            "read",
            "a read path",
            self.map,
            self.read,
            self.map.read_paths(),
        )?;
        self.check_keys()?;
        // The update mode decides the wakeup (its batch or poll interval
        // may differ between versions); files before v5 left it out.
        let derived = Wakeup::of(self.map, self.update);
        let wakeup = wakeup_column(self.map, self.update);
        let agrees = match (derived, Wakeup::from_name(&self.wakeup)) {
            (None, _) => self.wakeup.is_empty(),
            (Some(derived), Some(written)) => derived.same_kind(written),
            (Some(_), None) => false,
        };
        if self.schema_version < 5 && self.wakeup.is_empty() {
            self.wakeup = wakeup;
        } else if !agrees {
            return Err(Invalid {
                column: "wakeup",
                message: if wakeup.is_empty() {
                    format!(
                        "`{}` on {}/{}: must be empty for a count in a map",
                        quoted(&self.wakeup),
                        self.map,
                        self.update
                    )
                } else {
                    format!(
                        "`{}` on {}/{}: its wakeup is `{wakeup}`",
                        quoted(&self.wakeup),
                        self.map,
                        self.update
                    )
                },
            });
        }
        one_of("target", &self.target, &names(&Target::ALL, Target::name))?;
        one_of(
            "spawn",
            &self.spawn,
            &names(&SpawnMethod::ALL, SpawnMethod::name),
        )?;
        if !self.expected_oracle.is_empty() {
            let oracles: Vec<&str> = crate::measure::Oracle::ALL
                .iter()
                .map(|o| o.name())
                .collect();
            one_of("expected_oracle", &self.expected_oracle, &oracles)?;
        }
        for (column, value) in [
            ("ns_per_run_median", &mut self.ns_per_run_median),
            ("ns_per_run_ci95_lo", &mut self.ns_per_run_ci95_lo),
            ("ns_per_run_ci95_hi", &mut self.ns_per_run_ci95_hi),
            ("open_ms", &mut self.open_ms),
            ("load_ms", &mut self.load_ms),
            ("attach_ms", &mut self.attach_ms),
            ("startup_ms", &mut self.startup_ms),
            ("read_us_median", &mut self.read_us_median),
            ("read_us_ci95_lo", &mut self.read_us_ci95_lo),
            ("read_us_ci95_hi", &mut self.read_us_ci95_hi),
            ("storm_wall_s", &mut self.storm_wall_s),
            ("storm_cpu_user_s", &mut self.storm_cpu_user_s),
            ("storm_cpu_sys_s", &mut self.storm_cpu_sys_s),
            ("system_cpu_s", &mut self.system_cpu_s),
            ("execs_per_s", &mut self.execs_per_s),
            ("baseline_wall_s", &mut self.baseline_wall_s),
            ("stats_bias_ns", &mut self.stats_bias_ns),
            ("trigger_ns_per_call", &mut self.trigger_ns_per_call),
            ("precision_target", &mut self.precision_target),
            ("precision_reached", &mut self.precision_reached),
            ("machine_noise_cv", &mut self.machine_noise_cv),
            ("machine_calibration_ns", &mut self.machine_calibration_ns),
        ] {
            non_negative(column, value)?;
        }
        // Paired differences, and figures with the stats' own cost taken
        // out: inside the noise, they may come out below zero.
        for (column, value) in [
            ("e2e_ns_per_exec", self.e2e_ns_per_exec),
            ("ns_per_event_mean", self.ns_per_event_mean),
            ("ns_per_event_median", self.ns_per_event_median),
            ("ns_per_event_ci95_lo", self.ns_per_event_ci95_lo),
            ("ns_per_event_ci95_hi", self.ns_per_event_ci95_hi),
            (
                "throughput_ns_per_event_median",
                self.throughput_ns_per_event_median,
            ),
            (
                "throughput_ns_per_event_ci95_lo",
                self.throughput_ns_per_event_ci95_lo,
            ),
            (
                "throughput_ns_per_event_ci95_hi",
                self.throughput_ns_per_event_ci95_hi,
            ),
            ("filter_cost_ns_median", self.filter_cost_ns_median),
            ("filter_cost_ns_ci95_lo", self.filter_cost_ns_ci95_lo),
            ("filter_cost_ns_ci95_hi", self.filter_cost_ns_ci95_hi),
        ] {
            finite(column, value)?;
        }
        // Before v3 the per-event figures were not written; they follow from
        // the per-run ones exactly as the writer derives them.
        if self.schema_version < 3 && self.ns_per_event_median.is_none() {
            if let (Some(runs), Some(counted)) = (self.run_cnt, self.counted.filter(|&c| c > 0)) {
                let k = runs as f64 / counted as f64;
                self.ns_per_event_median = self.ns_per_run_median.map(|v| v * k);
                self.ns_per_event_ci95_lo = self.ns_per_run_ci95_lo.map(|v| v * k);
                self.ns_per_event_ci95_hi = self.ns_per_run_ci95_hi.map(|v| v * k);
            }
        }
        // Before v7 every backend was a library loader, whose startup is
        // its three phases, summed as the writer's `LoadTimings::total`.
        if self.schema_version < 7 && self.startup_ms.is_none() {
            if let (Some(o), Some(l), Some(a)) = (self.open_ms, self.load_ms, self.attach_ms) {
                // Phases each finite can still sum past f64's range: no
                // startup then, rather than one the reader would refuse.
                self.startup_ms = Some(round(o + l + a, 3)).filter(|s| s.is_finite());
            }
        }
        ordered(
            "ns_per_run_median",
            self.ns_per_run_median,
            self.ns_per_run_ci95_lo,
            self.ns_per_run_ci95_hi,
        )?;
        ordered(
            "ns_per_event_median",
            self.ns_per_event_median,
            self.ns_per_event_ci95_lo,
            self.ns_per_event_ci95_hi,
        )?;
        ordered(
            "throughput_ns_per_event_median",
            self.throughput_ns_per_event_median,
            self.throughput_ns_per_event_ci95_lo,
            self.throughput_ns_per_event_ci95_hi,
        )?;
        ordered(
            "filter_cost_ns_median",
            self.filter_cost_ns_median,
            self.filter_cost_ns_ci95_lo,
            self.filter_cost_ns_ci95_hi,
        )?;
        ordered(
            "read_us_median",
            self.read_us_median,
            self.read_us_ci95_lo,
            self.read_us_ci95_hi,
        )
    }
}

impl Checked for ProbeRow {
    const NAMED: &'static [(&'static str, Parse)] = &[
        ("timing", variant::<Timing>),
        ("attach", parsed::<AttachPoint>),
        ("map", parsed::<MapKind>),
    ];

    fn check(&mut self) -> Result<(), Invalid> {
        check_cell(self.schema_version, &self.backend)
    }
}

impl Checked for SemanticsRow {
    const NAMED: &'static [(&'static str, Parse)] = &[("timing", variant::<Timing>)];

    fn check(&mut self) -> Result<(), Invalid> {
        one_of("backend", &self.backend, crate::backends::NAMES)?;
        one_of(
            "attach",
            &self.attach,
            &names(AttachPoint::ALL, AttachPoint::name),
        )?;
        one_of("target", &self.target, &names(&Target::ALL, Target::name))?;
        one_of("status", &self.status, SEMANTICS_STATUSES)
    }
}

/// The file's bytes: a regular file only, not through a symbolic link, at
/// most [`MAX_CSV_BYTES`], stopping at Ctrl-C.
pub fn read_capped(path: &Path) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Look before opening: opening a device can act (a tape rewinds, a
    // watchdog starts); the same file is checked again once open.
    let before = fs::symlink_metadata(path).map_err(io)?;
    refuse_unless_regular(path, &before)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadError::Symlink {
                path: path.to_path_buf(),
            },
            _ => io(e),
        })?;
    let meta = file.metadata().map_err(io)?;
    refuse_unless_regular(path, &meta)?;
    if (meta.dev(), meta.ino()) != (before.dev(), before.ino()) {
        return Err(io(std::io::Error::other(
            "it was replaced while being opened",
        )));
    }
    let too_large = || ReadError::TooLarge {
        path: path.to_path_buf(),
        cap: MAX_CSV_BYTES,
    };
    if meta.len() > MAX_CSV_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the cap tells a file that grew past it.
    let mut rest = file.take(MAX_CSV_BYTES + 1);
    loop {
        if crate::interrupt::requested() {
            return Err(ReadError::Interrupted {
                path: path.to_path_buf(),
            });
        }
        let n = (&mut rest)
            .take(CHUNK)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if n == 0 {
            break;
        }
    }
    if bytes.len() as u64 > MAX_CSV_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

fn refuse_unless_regular(path: &Path, meta: &fs::Metadata) -> Result<(), ReadError> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_symlink() {
        return Err(ReadError::Symlink {
            path: path.to_path_buf(),
        });
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    Err(ReadError::NotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

/// The 1-based line holding byte `offset`, as an editor counts lines: `\n`,
/// `\r\n` and a lone `\r` each end one.
pub fn line_at(bytes: &[u8], offset: u64) -> u64 {
    let mut end = usize::try_from(offset).map_or(bytes.len(), |o| o.min(bytes.len()));
    // The csv reader may place a record after the `\r` of a `\r\n`.
    if end > 0 && bytes[end - 1] == b'\r' && bytes.get(end) == Some(&b'\n') {
        end += 1;
    }
    let before = &bytes[..end];
    let mut line = 1;
    for (i, &b) in before.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            line += 1;
        }
    }
    line
}

/// Every row of a run CSV, or the first problem found.
pub fn read_run(path: &Path) -> Result<Vec<Row>, ReadError> {
    let bytes = read_capped(path)?;
    parse_run(path, &bytes)
}

/// The rows of a run CSV's bytes (`path` names it in errors), every value
/// checked, or the first problem found.
pub fn parse_run(path: &Path, bytes: &[u8]) -> Result<Vec<Row>, ReadError> {
    let not_run = || ReadError::NotRun {
        path: path.to_path_buf(),
    };
    // The header line alone says whether it is a run CSV at all.
    let mut peek = ::csv::Reader::from_reader(bytes);
    if let Ok(headers) = peek.headers() {
        if !headers.iter().any(|h| h == "schema_version") {
            return Err(not_run());
        }
    }
    let (rows, starts) = parse(path, bytes, |headers, record, line| {
        let version_col = headers
            .iter()
            .position(|h| h == "schema_version")
            .ok_or_else(not_run)?;
        let found = record.get(version_col).unwrap_or("");
        // v1 had no `timing` column: its rows read as native.
        if !(1..=SCHEMA_VERSION).any(|v| v.to_string() == found) {
            return Err(ReadError::Version {
                path: path.to_path_buf(),
                line,
                found: quoted(found),
            });
        }
        Ok(())
    })?;
    if rows.is_empty() {
        return Err(ReadError::Empty {
            path: path.to_path_buf(),
        });
    }
    // Sums over repetitions are made later (compare, recommend): a file
    // whose sums overflow is refused here, naming the line that did it.
    try_aggregate(&rows).map_err(|o| ReadError::Overflow {
        path: path.to_path_buf(),
        line: line_at(bytes, starts[o.row]),
        column: o.column,
    })?;
    Ok(rows)
}

/// Every row of a CSV this bpfstorm wrote other than a run's (a guest's
/// probe or semantics rows, to merge into the host's), every value checked.
pub fn read_rows<T: DeserializeOwned + Checked>(path: &Path) -> Result<Vec<T>, ReadError> {
    let bytes = read_capped(path)?;
    parse_rows(path, &bytes)
}

/// The rows of a CSV's bytes (`path` names it in errors), every value
/// checked, or the first problem found.
pub fn parse_rows<T: DeserializeOwned + Checked>(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<T>, ReadError> {
    parse(path, bytes, |_, _, _| Ok(())).map(|(rows, _)| rows)
}

/// The rows and the byte offset each starts at. `before` sees each record
/// (with the headers and its line) before it is deserialized.
fn parse<T: DeserializeOwned + Checked>(
    path: &Path,
    bytes: &[u8],
    mut before: impl FnMut(&::csv::StringRecord, &::csv::StringRecord, u64) -> Result<(), ReadError>,
) -> Result<(Vec<T>, Vec<u64>), ReadError> {
    let malformed = |e: &::csv::Error| ReadError::Malformed {
        path: path.to_path_buf(),
        line: line_at(bytes, e.position().map_or(0, |p| p.byte())),
        message: quoted_message(&e.to_string()),
    };
    let mut reader = ::csv::Reader::from_reader(bytes);
    let headers = reader.headers().map_err(|e| malformed(&e))?.clone();
    let mut rows = Vec::new();
    let mut starts = Vec::new();
    let mut record = ::csv::StringRecord::new();
    loop {
        if rows.len() % ROWS_PER_CHECK == 0 && crate::interrupt::requested() {
            return Err(ReadError::Interrupted {
                path: path.to_path_buf(),
            });
        }
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(malformed(&e)),
        }
        let start = record.position().map_or(0, |p| p.byte());
        let line = line_at(bytes, start);
        before(&headers, &record, line)?;
        let invalid = |column: String, message: String| ReadError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let mut row: T = record
            .deserialize(Some(&headers))
            .map_err(|e| match e.kind() {
                ::csv::ErrorKind::Deserialize { err, .. } => match err.field() {
                    Some(i) => {
                        let i = usize::try_from(i).unwrap_or(usize::MAX);
                        let column = headers.get(i).map_or_else(|| format!("#{}", i + 1), quoted);
                        invalid(
                            column,
                            value_problem(err.kind(), record.get(i).unwrap_or("")),
                        )
                    }
                    None => match named_problem::<T>(&headers, &record) {
                        Some((column, message)) => invalid(column, message),
                        None => ReadError::Malformed {
                            path: path.to_path_buf(),
                            line,
                            message: quoted_message(&err.to_string()),
                        },
                    },
                },
                _ => malformed(&e),
            })?;
        row.check()
            .map_err(|e| invalid(e.column.to_string(), e.message))?;
        rows.push(row);
        starts.push(start);
    }
    Ok((rows, starts))
}

/// What is wrong with a value that did not deserialize.
fn value_problem(kind: &::csv::DeserializeErrorKind, value: &str) -> String {
    use ::csv::DeserializeErrorKind as K;
    let value = quoted(value);
    match kind {
        K::ParseInt(e) => format!("`{value}` is not a whole number in this column's range ({e})"),
        K::ParseFloat(e) => format!("`{value}` is not a number ({e})"),
        K::ParseBool(_) => format!("`{value}` is not `true` or `false`"),
        K::InvalidUtf8(_) => "the value is not UTF-8 text".into(),
        K::UnexpectedEndOfRow => "the row ends before this column".into(),
        K::Message(m) | K::Unsupported(m) => quoted_message(m),
    }
}

/// A message that may quote the file: control characters made visible, and
/// cut short.
fn quoted_message(message: &str) -> String {
    escape::terminal(&escape::shorten(message, 4 * QUOTED_CHARS))
}

/// The newest `run-*.csv` in `dir` (names sort by start time).
pub fn newest_run(dir: &Path) -> Option<PathBuf> {
    let mut runs: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("run-") && n.ends_with(".csv"))
        })
        .collect();
    runs.sort();
    runs.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run CSV of `row` with the columns of `version`: v7's less
    /// `startup_ms` before v7.
    fn csv_of(version: u32, row: Row) -> Vec<u8> {
        let mut writer = ::csv::Writer::from_writer(Vec::new());
        writer
            .serialize(Row {
                schema_version: version,
                backend: "libbpf".into(),
                filter: "cgroup".into(),
                target: "tiny".into(),
                spawn: "fork".into(),
                ..row
            })
            .unwrap();
        let bytes = writer.into_inner().unwrap();
        let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
        let headers = reader.headers().unwrap().clone();
        let startup = headers.iter().position(|h| h == "startup_ms").unwrap();
        let keep = |record: &::csv::StringRecord| -> Vec<String> {
            record
                .iter()
                .enumerate()
                .filter(|&(i, _)| version >= 7 || i != startup)
                .map(|(_, v)| v.to_string())
                .collect()
        };
        let mut out = ::csv::Writer::from_writer(Vec::new());
        out.write_record(keep(&headers)).unwrap();
        for record in reader.records() {
            out.write_record(keep(&record.unwrap())).unwrap();
        }
        out.into_inner().unwrap()
    }

    fn loaded(startup_ms: Option<f64>) -> Row {
        Row {
            open_ms: Some(1.25),
            load_ms: Some(20.5),
            attach_ms: Some(0.125),
            startup_ms,
            ..Row::default()
        }
    }

    fn read(bytes: &[u8]) -> Result<Vec<Row>, ReadError> {
        parse_run(Path::new("run.csv"), bytes)
    }

    #[test]
    fn startup_before_v7_is_the_sum_of_the_three_phases() {
        for version in 1..7 {
            let rows = read(&csv_of(version, loaded(None))).unwrap();
            assert_eq!(rows[0].startup_ms, Some(21.875), "v{version}");
        }
        let unloaded = read(&csv_of(6, Row::default())).unwrap();
        assert_eq!(unloaded[0].startup_ms, None, "no phases, no startup");
        let huge = Row {
            open_ms: Some(1e306),
            ..loaded(None)
        };
        let rows = read(&csv_of(6, huge)).unwrap();
        assert_eq!(rows[0].startup_ms, None, "a sum past f64's range");
        // A tool's startup is its own, not its phases' sum.
        let tool = read(&csv_of(7, loaded(Some(900.0)))).unwrap();
        assert_eq!(tool[0].startup_ms, Some(900.0));
    }

    #[test]
    fn startup_is_a_time() {
        let err = read(&csv_of(7, loaded(Some(-1.0)))).unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { column, .. } if column == "startup_ms"),
            "{err}"
        );
    }

    #[test]
    fn versions_past_this_one_are_refused() {
        let err = read(&csv_of(SCHEMA_VERSION + 1, loaded(Some(1.0)))).unwrap_err();
        assert!(
            matches!(&err, ReadError::Version { found, .. }
                if *found == (SCHEMA_VERSION + 1).to_string()),
            "{err}"
        );
    }
}
