//! Reading CSVs back, on hostile input, with no kernel and no root: text
//! from a file cannot forge markdown, special files are refused at once,
//! numbers are checked, errors name the column and the line, and no input
//! panics, hangs or grows without bound.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bpfstorm::compare::{self, MAX_KERNEL_COLUMNS};
use bpfstorm::export::csv::{CsvReport, ProbeRow, Row, Status, Timing, SCHEMA_VERSION};
use bpfstorm::export::read::{
    parse_rows, parse_run, read_capped, read_rows, read_run, ReadError, MAX_CSV_BYTES,
};
use bpfstorm::hot::Method;
use bpfstorm::output::summary;
use bpfstorm::recommend;
use bpfstorm::semantics::{self, SemanticsRow};
use bpfstorm_common::{AttachPoint, MapKind, ReadPath, UpdateMode, Wakeup};

/// A real run CSV shipped with the repository (the committed baseline).
fn baseline_bytes() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/baseline-rust-vm.csv");
    fs::read(path).expect("results/baseline-rust-vm.csv")
}

/// The run summary in both its layouts, plain (as a pipe gets it).
fn summaries(rows: &[Row]) -> String {
    let wide = summary::View {
        columns: None,
        ..summary::View::default()
    };
    [summary::View::default(), wide]
        .map(|view| summary::render(rows, view))
        .concat()
}

/// The baseline with a `timing` column (added to a v1 file) and `edit` applied
/// to each data row (0-based row index, fields, column by name), written
/// back as CSV. Its 108 rows are 27 hot cells, then 27 storm cells x 3
/// repetitions.
fn edited(edit: impl Fn(usize, &mut Vec<String>, &dyn Fn(&str) -> usize)) -> Vec<u8> {
    let bytes = baseline_bytes();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let mut header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    // A v1 baseline gains v2's `timing` column; a later one has it.
    let v1 = !header.iter().any(|h| h == "timing");
    let timing = header.iter().position(|h| h == "cpu_model").unwrap() + 1;
    if v1 {
        header.insert(timing, "timing".into());
    }
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for (i, record) in reader.records().enumerate() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        if v1 {
            fields.insert(timing, "native".into());
            fields[0] = "2".into();
        }
        edit(i, &mut fields, &col);
        writer.write_record(&fields).unwrap();
    }
    writer.into_inner().unwrap()
}

/// `md` without its code spans: what markdown reads as markup or HTML.
fn outside_code(md: &str) -> String {
    let mut out = String::new();
    let mut rest = md;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..open]);
        let fence = rest[open..].len() - rest[open..].trim_start_matches('`').len();
        let after = &rest[open + fence..];
        // The closing run: exactly as many backticks.
        let mut search = 0;
        let close = loop {
            match after[search..].find('`') {
                None => break None,
                Some(i) => {
                    let at = search + i;
                    let run = after[at..].len() - after[at..].trim_start_matches('`').len();
                    if run == fence {
                        break Some(at);
                    }
                    search = at + run;
                }
            }
        };
        match close {
            Some(at) => rest = &after[at + fence..],
            None => {
                out.push_str(&rest[open..open + fence]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn parse(bytes: &[u8]) -> Result<Vec<Row>, ReadError> {
    parse_run(Path::new("test.csv"), bytes)
}

/// Pipes in a table line that are not escaped: its cell borders.
fn borders(line: &str) -> usize {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
        .count()
}

/// Every table has as many cells per line as its header, no line is a
/// heading it should not be, and no HTML tag survives.
fn assert_safe_markdown(md: &str, headings: &[&str]) {
    let markup = outside_code(md);
    assert!(!markup.contains("<script"), "{md}");
    assert!(!markup.contains("<b>"), "{md}");
    assert!(!md.contains('\x1b'), "{md}");
    let mut width = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let w = borders(line);
            assert_eq!(*width.get_or_insert(w), w, "a forged cell: {line}\n{md}");
        } else {
            width = None;
        }
        if line.starts_with('#') {
            assert!(
                headings.iter().any(|h| line.starts_with(h)),
                "a forged heading: {line}"
            );
        }
    }
}

const HOSTILE: &str =
    "evil | cell\n## Forged heading <script>alert(1)</script> <b>x</b> \x1b[2J `tick` *em* [l](u)";

// --- Item 5: text from a CSV reaches markdown escaped ------------------------

#[test]
fn hostile_free_text_cannot_forge_markdown() {
    assert_eq!(outside_code("a `<x>` b ``c`d`` e ` f"), "a  b  e ` f");
    let bytes = edited(|i, f, col| {
        for c in [
            "host",
            "kernel",
            "cpu_model",
            "git_rev",
            "run_id",
            "timestamp_utc",
        ] {
            f[col(c)] = HOSTILE.into();
        }
        if i == 0 {
            f[col("status")] = "error".into();
            f[col("error")] = HOSTILE.into();
        }
    });
    let new = parse(&bytes).expect("free text is read as it is");
    assert_eq!(new[0].host, HOSTILE);
    let base = parse(&baseline_bytes()).unwrap();

    let changes = compare::compare(&base, &new, 5.0);
    assert!(changes
        .iter()
        .any(|c| c.verdict.describe().contains("<script>")));
    let md = compare::render_markdown("base.csv vs new|<script>.csv", &[], &changes, 5.0);
    assert_safe_markdown(&md, &["## base.csv vs new"]);
    assert!(md.contains("&lt;script&gt;"), "{md}");

    let mut both = base.clone();
    both.extend(new.clone());
    let md = compare::render_by_kernel(&both);
    assert_safe_markdown(&md, &["## By kernel"]);

    let md = recommend::render_markdown(&recommend::recommend(&new));
    assert_safe_markdown(&md, &["# Recommendation", "## "]);

    let text = summaries(&new);
    assert!(!text.contains('\x1b'), "{text}");
    assert!(!text.contains("\n## Forged"), "{text}");
}

#[test]
fn hostile_semantics_rows_cannot_forge_markdown() {
    let row = |kernel: &str, status: &str| SemanticsRow {
        kernel: kernel.into(),
        timing: Timing::Native,
        backend: "libbpf".into(),
        backend_version: HOSTILE.into(),
        attach: "tp_sys_enter_execve".into(),
        target: "tiny".into(),
        status: status.into(),
        error: HOSTILE.into(),
        attempts: Some(u64::MAX),
        successes: Some(u64::MAX),
        counted: Some(u64::MAX - 1),
        perf_sys_enter_execve: Some(0),
        perf_sys_enter_execveat: Some(0),
        perf_sched_process_exec: Some(0),
    };
    let rows = vec![row(HOSTILE, "ok"), row("6.1 `x`|y", "refused")];
    let md = semantics::render_kernels(&rows);
    assert_safe_markdown(&md, &["# What each exec hook counts", "## Target `tiny`"]);
    assert!(md.contains(&format!("{} of {} attempts", u64::MAX - 1, u64::MAX)));
}

#[test]
fn names_that_are_not_bpfstorm_names_are_refused_with_column_and_line() {
    for (column, value) in [
        ("backend", "libbpf|x"),
        ("attach", "<script>"),
        ("map", "Array"),
        ("update", ""),
        ("filter", "none"),
        ("target", "tiny\n# x"),
        ("spawn", "vfork"),
        ("status", "fine"),
        ("timing", "fast"),
        ("expected_oracle", "syscalls:sys_enter_open"),
    ] {
        let bytes = edited(|i, f, col| {
            if i == 4 {
                f[col(column)] = value.into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        let text = err.to_string();
        // Row 4 is line 6: the header, then rows 0 to 4.
        assert!(
            matches!(&err, ReadError::Invalid { column: c, line: 6, .. } if c == column),
            "{column}: {err:?}"
        );
        assert!(text.contains(&format!("column `{column}`")), "{text}");
        assert!(
            !text.contains('\n'),
            "control characters are shown escaped: {text}"
        );
        assert!(!text.contains("field "), "{text}");
    }
}

// --- Item 8: special files refused at once, size capped ----------------------

/// `f()` within `limit`, or a failure (instead of a test hanging forever).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("the read blocked: it must refuse a special file at once")
}

#[test]
fn a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("run-fifo.csv");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let path = fifo.clone();
    let err = within(Duration::from_secs(5), move || read_run(&path)).unwrap_err();
    assert!(
        matches!(err, ReadError::NotRegular { kind, .. } if kind.contains("FIFO")),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let path = fifo.clone();
    let err = within(Duration::from_secs(5), move || {
        read_rows::<SemanticsRow>(&path)
    })
    .unwrap_err();
    assert!(matches!(err, ReadError::NotRegular { .. }), "{err:?}");
}

#[test]
fn devices_directories_and_links_are_refused() {
    let err = within(Duration::from_secs(5), || read_run(Path::new("/dev/zero"))).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::NotRegular {
                kind: "a character device",
                ..
            }
        ),
        "{err:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = read_capped(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::NotRegular {
                kind: "a directory",
                ..
            }
        ),
        "{err:?}"
    );
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let err = read_run(&link).unwrap_err();
    assert!(matches!(err, ReadError::Symlink { .. }), "{err:?}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn files_past_the_cap_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.csv");
    let file = fs::File::create(&big).unwrap();
    // Sparse: no disk, no time.
    file.set_len(MAX_CSV_BYTES + 1).unwrap();
    let started = Instant::now();
    let err = read_run(&big).unwrap_err();
    assert!(matches!(err, ReadError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("64 MiB"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));

    let ok = dir.path().join("ok.csv");
    fs::write(&ok, baseline_bytes()).unwrap();
    assert_eq!(read_run(&ok).unwrap().len(), 108);
}

// --- Item 9: numbers checked, errors name the column and the line -------------

#[test]
fn times_that_are_not_finite_or_are_negative_are_refused() {
    for (column, value) in [
        ("ns_per_run_median", "NaN"),
        ("ns_per_run_ci95_hi", "inf"),
        ("ns_per_run_ci95_lo", "-5.0"),
        ("read_us_median", "-inf"),
        ("load_ms", "-0.5"),
        ("storm_wall_s", "nan"),
        ("e2e_ns_per_exec", "NaN"),
    ] {
        let bytes = edited(|i, f, col| {
            if i == 9 {
                f[col(column)] = value.into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { column: c, line: 11, .. } if c == column),
            "{column}={value}: {err:?}"
        );
    }
    // A median outside its own interval.
    let bytes = edited(|i, f, col| {
        if i == 0 {
            f[col("ns_per_run_ci95_lo")] = "1000".into();
        }
    });
    let err = parse(&bytes).unwrap_err().to_string();
    assert!(err.contains("line 2, column `ns_per_run_median`"), "{err}");
    assert!(err.contains("outside its 95% interval"), "{err}");

    // What may be negative is: a paired difference. -0 reads as 0.
    let bytes = edited(|i, f, col| {
        if i == 0 {
            f[col("e2e_ns_per_exec")] = "-12.5".into();
            f[col("attach_ms")] = "-0.0".into();
        }
    });
    let rows = parse(&bytes).unwrap();
    assert_eq!(rows[0].e2e_ns_per_exec, Some(-12.5));
    assert!(rows[0].attach_ms.unwrap().is_sign_positive());
}

#[test]
fn counts_that_overflow_when_summed_are_an_error_not_a_wrap() {
    // Every row one cell (same key): two repetitions of u64::MAX.
    let bytes = edited(|i, f, col| {
        if i < 2 {
            for (c, v) in [
                ("backend", "libbpf"),
                ("attach", "tp_sys_enter_execve"),
                ("map", "array"),
                ("update", "atomic"),
            ] {
                f[col(c)] = v.into();
            }
            f[col("counted")] = u64::MAX.to_string();
        }
    });
    let err = parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::Overflow {
                column: "counted",
                line: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("line 3, column `counted`"),
        "{err}"
    );

    // One u64::MAX on its own is read (its own cell: filter `all`); summed
    // with a second file's, the cell becomes an error that says so, and
    // nothing panics or wraps.
    let bytes = edited(|i, f, col| {
        if i == 0 {
            f[col("filter")] = "all".into();
            f[col("counted")] = u64::MAX.to_string();
            f[col("missing")] = i64::MIN.to_string();
        }
    });
    let rows = parse(&bytes).unwrap();
    let mut twice = rows.clone();
    twice.extend(rows.clone());
    let md = compare::render_by_kernel(&twice);
    assert!(!md.contains(&(u64::MAX - 1).to_string()), "{md}");
    let cells = bpfstorm::aggregate::aggregate(&twice);
    let first = &cells[0];
    assert_eq!(first.status, Status::Error);
    assert!(first.error.contains("overflows"), "{}", first.error);
    assert_eq!(first.counted, None);
    for c in compare::compare(&twice, &rows, 5.0) {
        let _ = c.verdict.describe();
    }
    let _ = summaries(&twice);
    let _ = recommend::render_markdown(&recommend::recommend(&twice));

    // A value past u64 names its column, not a field number.
    let bytes = edited(|i, f, col| {
        if i == 3 {
            f[col("issued")] = "18446744073709551616".into();
        }
    });
    let err = parse(&bytes).unwrap_err().to_string();
    assert!(err.contains("line 5, column `issued`"), "{err}");
    assert!(!err.contains("field"), "{err}");
}

#[test]
fn lines_are_counted_right_in_crlf_and_cr_files() {
    let bad = edited(|i, f, col| {
        if i == 6 {
            f[col("workers")] = "many".into();
        }
    });
    let text = String::from_utf8(bad).unwrap();
    let crlf = text.replace('\n', "\r\n");
    let cr = text.replace('\n', "\r");
    for (what, bytes) in [("LF", &text), ("CRLF", &crlf), ("CR", &cr)] {
        let err = parse(bytes.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { column, line: 8, .. } if column == "workers"),
            "{what}: {err:?}"
        );
    }
    // A quoted field over two lines moves the lines after it down one.
    let two_lines = edited(|i, f, col| match i {
        2 => f[col("error")] = "first\r\nsecond".into(),
        6 => f[col("workers")] = "many".into(),
        _ => {}
    });
    let err = parse(&two_lines).unwrap_err();
    assert!(
        matches!(&err, ReadError::Invalid { line: 9, .. }),
        "{err:?}"
    );
}

#[test]
fn semantics_and_probe_rows_are_checked_too() {
    let header = "kernel,timing,backend,backend_version,attach,target,status,error,attempts,successes,counted,perf_sys_enter_execve,perf_sys_enter_execveat,perf_sched_process_exec\r\n";
    let good = "6.1,native,libbpf,v1,tp_sys_enter_execve,tiny,ok,,10,10,10,10,0,10\r\n";
    let rows: Vec<SemanticsRow> =
        parse_rows(Path::new("s.csv"), format!("{header}{good}").as_bytes()).unwrap();
    assert_eq!(rows.len(), 1);
    let bad = "6.1,native,libbpf,v1,tp_sys_enter_execve,tiny|x,ok,,10,10,10,10,0,10\r\n";
    let err = parse_rows::<SemanticsRow>(
        Path::new("s.csv"),
        format!("{header}{good}{good}{bad}").as_bytes(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ReadError::Invalid { column, line: 4, .. } if column == "target"),
        "{err:?}"
    );
    let bad = "6.1,native,libbpf,v1,tp_sys_enter_execve,tiny,ok,,-1,10,10,10,0,10\r\n";
    let err = parse_rows::<SemanticsRow>(Path::new("s.csv"), format!("{header}{bad}").as_bytes())
        .unwrap_err();
    assert!(
        matches!(&err, ReadError::Invalid { column, line: 2, .. } if column == "attempts"),
        "{err:?}"
    );

    let header = "schema_version,run_id,timestamp_utc,host,kernel,cpus,cpu_model,timing,git_rev,backend,backend_version,attach,map,supported,reason\n";
    let bad = "1,r,t,h,k,2,m,native,g,libbpf,v,tp_sys_enter_execve,arrays,true,\n";
    let err = parse_rows::<ProbeRow>(Path::new("p.csv"), format!("{header}{bad}").as_bytes())
        .unwrap_err();
    assert!(
        matches!(&err, ReadError::Invalid { column, line: 2, .. } if column == "map"),
        "{err:?}"
    );
}

// --- No input panics, hangs or grows without bound ---------------------------

/// xorshift64: a fixed seed, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that have broken readers: special numbers, markdown, CSV syntax.
const TOKENS: &[&str] = &[
    "NaN",
    "inf",
    "-inf",
    "-1",
    "-0",
    "1e308",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "|",
    "<script>",
    "\r\n",
    "\r",
    "\n",
    "\"",
    ",",
    "\u{202e}",
    "\x1b[2J",
    "ok",
    "error",
    "emulated",
    "racy",
    "ringbuf",
    "true",
    "",
    "3",
    "1",
    "0",
];

/// A damaged copy of `original`.
fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        match rng.below(7) {
            0 => bytes.truncate(rng.below(len + 1)),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    if !bytes.is_empty() {
                        let i = rng.below(bytes.len());
                        bytes[i] = rng.next() as u8;
                    }
                }
            }
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let i = rng.below(len + 1);
                bytes.splice(i..i, token.iter().copied());
            }
            4 => {
                // Replace one field (between commas) with a token.
                let i = rng.below(len + 1);
                let start = bytes[..i]
                    .iter()
                    .rposition(|&b| b == b',' || b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == b',' || b == b'\n')
                    .map_or(len, |p| i + p);
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                bytes.splice(start..end, token.iter().copied());
            }
            5 => {
                // Duplicate a stretch (repetitions of a cell, more rows).
                let i = rng.below(len + 1);
                let j = (i + rng.below(2048)).min(len);
                let copy = bytes[i..j].to_vec();
                bytes.splice(i..i, copy);
            }
            _ => {
                let i = rng.below(len + 1);
                let j = (i + rng.below(64)).min(len);
                bytes.drain(i..j);
            }
        }
    }
    bytes
}

/// Everything a reader's rows go through.
fn render_all(rows: &[Row], other: &[Row]) {
    let changes = compare::compare(rows, other, 5.0);
    let md = compare::render_markdown("a vs b", &[], &changes, 5.0);
    assert!(!outside_code(&md).contains("<script>"), "{md}");
    let mut both = rows.to_vec();
    both.extend_from_slice(other);
    let md = compare::render_by_kernel(&both);
    assert!(!outside_code(&md).contains("<script>"), "{md}");
    let md = recommend::render_markdown(&recommend::recommend(rows));
    assert!(!outside_code(&md).contains("<script>"), "{md}");
    let text = summaries(rows);
    assert!(!text.contains('\x1b'));
}

#[test]
fn no_input_panics_hangs_or_grows_without_bound() {
    let started = Instant::now();
    let original = baseline_bytes();
    let base = parse(&original).unwrap();
    let semantics_csv = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/semantics-6.18.44-fc-v595.csv"),
    )
    .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // The v5 fixture (`wakeup` and `read` columns, buffers, a mapped read),
    // damaged on a stream of its
    // own so the baseline's rounds stay as they were.
    let v5 = fs::read(fixture("run-schema-v5.csv")).unwrap();
    let mut v5_rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..600 {
        let bytes = if round % 10 == 0 {
            // Random bytes, some of them CSV-like.
            let alphabet = b",\n\r\"0123456789.-abcNaf|<>";
            (0..rng.below(4096))
                .map(|_| {
                    if rng.below(2) == 0 {
                        alphabet[rng.below(alphabet.len())]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect()
        } else {
            mutate(&mut rng, &original)
        };
        assert!(bytes.len() < 1 << 20, "inputs stay small");
        match parse(&bytes) {
            Ok(rows) => {
                accepted += 1;
                assert!(rows.len() <= bytes.len() / 64, "no row from nothing");
                for r in &rows {
                    for v in [r.ns_per_run_median, r.read_us_median, r.load_ms]
                        .into_iter()
                        .flatten()
                    {
                        assert!(v.is_finite() && v >= 0.0, "{v}");
                    }
                }
                render_all(&rows, &base);
                render_all(&base, &rows);
            }
            Err(e) => {
                refused += 1;
                let text = e.to_string();
                assert!(text.len() < 2048, "errors stay short: {text}");
                assert!(!text.contains('\x1b') && !text.contains('\n'), "{text}");
            }
        }
        let _ = parse_rows::<ProbeRow>(Path::new("p.csv"), &bytes);
        let damaged = mutate(&mut rng, &semantics_csv);
        if let Ok(rows) = parse_rows::<SemanticsRow>(Path::new("s.csv"), &damaged) {
            let md = semantics::render_kernels(&rows);
            assert!(!outside_code(&md).contains("<script>"), "{md}");
        }
        match parse(&mutate(&mut v5_rng, &v5)) {
            Ok(rows) => {
                for r in &rows {
                    let derived =
                        Wakeup::of(r.map, r.update).map_or_else(String::new, |w| w.name());
                    assert_eq!(r.wakeup, derived, "{}/{}", r.map, r.update);
                    assert!(
                        r.map.read_paths().contains(&r.read),
                        "{} read by {}",
                        r.map,
                        r.read
                    );
                }
                render_all(&rows, &base);
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.len() < 2048, "errors stay short: {text}");
                assert!(!text.contains('\x1b') && !text.contains('\n'), "{text}");
            }
        }
    }
    assert!(
        accepted > 10 && refused > 10,
        "{accepted} read, {refused} refused"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn thousands_of_kernels_render_in_bounded_time_and_width() {
    let base = parse(&baseline_bytes()).unwrap();
    let rows: Vec<Row> = (0..5000)
        .map(|i| {
            let mut r = base[i % base.len()].clone();
            r.kernel = format!("6.{i}");
            r
        })
        .collect();
    let started = Instant::now();
    let md = compare::render_by_kernel(&rows);
    let header = md.lines().find(|l| l.starts_with("| backend |")).unwrap();
    assert_eq!(borders(header), 7 + MAX_KERNEL_COLUMNS, "{header}");
    assert!(md.contains(&format!(
        "{} more kernel(s) left out",
        5000 - MAX_KERNEL_COLUMNS
    )));
    let _ = compare::compare(&rows, &rows, 5.0);
    let _ = summaries(&rows);
    let sem: Vec<SemanticsRow> = (0..5000)
        .map(|i| SemanticsRow {
            kernel: format!("6.{i}"),
            timing: Timing::Native,
            backend: "libbpf".into(),
            attach: "tp_sys_enter_execve".into(),
            target: "tiny".into(),
            status: "ok".into(),
            ..SemanticsRow::default()
        })
        .collect();
    let md = semantics::render_kernels(&sem);
    let header = md
        .lines()
        .find(|l| l.starts_with("| attach point |"))
        .unwrap();
    assert_eq!(borders(header), 2 + MAX_KERNEL_COLUMNS, "{header}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// Paths in errors are shown with control characters escaped.
#[test]
fn paths_in_errors_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("run-\x1b[2J\n.csv");
    let err = read_run(&path).unwrap_err().to_string();
    assert!(!err.contains('\x1b') && !err.contains('\n'), "{err}");
    assert!(err.contains("\\x1b[2J\\n"), "{err}");
}

// --- Round trips: what is read is written back as the same text ---------------

fn results(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../results")
        .join(name)
}

/// `rows` written by the writer `bpfstorm run` uses, as bytes.
fn written<R: serde::Serialize + Default + Clone>(rows: &[R]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut report = CsvReport::<R>::create(dir.path(), "out.csv").unwrap();
    for r in rows {
        report.push(r.clone()).unwrap();
    }
    fs::read(report.path()).unwrap()
}

/// A file under `harness/tests/data`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The columns v4 added at the end of a row (it also added `method`, after
/// `filter`).
const V4_END_COLUMNS: [&str; 14] = [
    "stats_bias_ns",
    "throughput_ns_per_event_median",
    "throughput_ns_per_event_ci95_lo",
    "throughput_ns_per_event_ci95_hi",
    "methods_agree",
    "trigger_ns_per_call",
    "rounds",
    "precision_target",
    "precision_reached",
    "machine_noise_cv",
    "machine_calibration_ns",
    "filter_cost_ns_median",
    "filter_cost_ns_ci95_lo",
    "filter_cost_ns_ci95_hi",
];

/// The header line of a fixture.
fn header_of(name: &str) -> String {
    let text = fs::read_to_string(fixture(name)).unwrap();
    text.lines().next().unwrap().to_string()
}

/// The header line of the current schema (v5), as the v5 fixture has it.
fn current_header() -> String {
    header_of("run-schema-v5.csv")
}

/// What the `wakeup` column holds for a strategy, written out here rather
/// than asked of `Wakeup::of`: empty for a count in a map; for a buffer, when
/// its update mode wakes the reader.
fn derived_wakeup(map: &str, update: &str) -> &'static str {
    match (map, update) {
        ("ringbuf", "stream" | "output") => "adaptive",
        ("ringbuf", "no_wakeup") => "poll_1ms",
        ("ringbuf" | "perf_event_array", "batch_wakeup") => "batch_64",
        ("perf_event_array", "stream") => "every_record",
        ("ringbuf" | "perf_event_array", _) => panic!("{map} takes no update `{update}`"),
        _ => "",
    }
}

/// An older run CSV (v1 with `timing` added, v2, v3 or v4) as the current
/// writer writes its rows: from v4, `method` after `filter` (`storm` in it)
/// and the v4 columns at the end, empty; from v5, `wakeup` after `update`,
/// holding what the row's map and update mode decide, and `read` after it,
/// `syscall` (the only read path before v5). Every older field
/// (`schema_version` included) is kept as it was, in its column.
fn as_current(bytes: &[u8]) -> String {
    let mut reader = csv::Reader::from_reader(bytes);
    let mut header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert!(
        !header.iter().any(|h| h == "wakeup" || h == "read"),
        "a header before v5"
    );
    let before_v4 = !header.iter().any(|h| h == "method");
    let col = |header: &[String], n: &str| header.iter().position(|h| h == n).unwrap();
    let (map, update) = (col(&header, "map"), col(&header, "update"));
    let wakeup = update + 1;
    header.insert(wakeup, "wakeup".into());
    let read = wakeup + 1;
    header.insert(read, "read".into());
    let method = col(&header, "filter") + 1;
    if before_v4 {
        header.insert(method, "method".into());
        header.extend(V4_END_COLUMNS.map(String::from));
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        let derived = derived_wakeup(&fields[map], &fields[update]);
        fields.insert(wakeup, derived.into());
        fields.insert(read, "syscall".into());
        if before_v4 {
            fields.insert(method, "storm".into());
            fields.extend(V4_END_COLUMNS.map(|_| String::new()));
        }
        writer.write_record(&fields).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

/// Every row holds the wakeup its map and update mode decide.
fn assert_wakeups_derived(rows: &[Row]) {
    for r in rows {
        assert_eq!(
            r.wakeup,
            derived_wakeup(r.map.name(), r.update.name()),
            "{} {}/{}",
            r.schema_version,
            r.map,
            r.update
        );
    }
}

/// Every row of a file before v5 was read by the lookup syscall.
fn assert_read_by_syscall(rows: &[Row]) {
    for r in rows {
        assert_eq!(
            r.read,
            ReadPath::Syscall,
            "{} {}/{}",
            r.schema_version,
            r.map,
            r.update
        );
    }
}

/// `r` with every value v4 added as a file before v4 reads it: a storm,
/// none of the new figures.
fn as_before_v4(r: &Row) -> Row {
    Row {
        method: Method::Storm,
        stats_bias_ns: None,
        throughput_ns_per_event_median: None,
        throughput_ns_per_event_ci95_lo: None,
        throughput_ns_per_event_ci95_hi: None,
        methods_agree: None,
        trigger_ns_per_call: None,
        rounds: None,
        precision_target: None,
        precision_reached: None,
        machine_noise_cv: None,
        machine_calibration_ns: None,
        filter_cost_ns_median: None,
        filter_cost_ns_ci95_lo: None,
        filter_cost_ns_ci95_hi: None,
        ..r.clone()
    }
}

/// A v3 run (a copy of the v3 baseline, kept as a fixture) reads as storm
/// rows with the v4 figures empty and each buffer's wakeup filled in from
/// its update mode, and is written back under the current (v5) header with
/// every v3 value unchanged, in its column: the version a row says it was
/// measured under (3) is kept, not rewritten.
#[test]
fn a_v3_run_is_written_back_byte_for_byte() {
    let original = fs::read(fixture("run-schema-v3.csv")).unwrap();
    let rows = parse(&original).unwrap();
    assert_eq!(rows.len(), 72);
    assert!(rows.iter().all(|r| r.schema_version == 3));
    for r in &rows {
        assert_eq!(
            *r,
            as_before_v4(r),
            "a v3 row reads as a storm, no v4 figures"
        );
    }
    assert_wakeups_derived(&rows);
    assert_read_by_syscall(&rows);
    // Its buffers had their defaults: the ring buffer's adaptive wakeup, the
    // perf buffer's wakeup on every record.
    for (map, wakeup) in [
        (MapKind::Ringbuf, "adaptive"),
        (MapKind::PerfEventArray, "every_record"),
    ] {
        let buffers: Vec<&Row> = rows.iter().filter(|r| r.map == map).collect();
        assert_eq!(buffers.len(), 9, "{map}");
        assert!(buffers
            .iter()
            .all(|r| r.update == UpdateMode::Stream && r.wakeup == wakeup));
    }
    assert!(rows
        .iter()
        .filter(|r| !r.map.is_stream())
        .all(|r| r.wakeup.is_empty()));

    let out = String::from_utf8(written(&rows)).unwrap();
    let expected = as_current(&original);
    assert_eq!(expected.lines().next(), Some(current_header().as_str()));
    assert_eq!(out, expected);
    assert!(out.lines().skip(1).all(|l| l.starts_with("3,")), "{out}");
    assert!(
        out.contains(",ringbuf,stream,adaptive,syscall,cgroup,storm,"),
        "{out}"
    );
    assert!(
        out.contains(",perf_event_array,stream,every_record,syscall,cgroup,storm,"),
        "{out}"
    );
    assert!(
        out.contains(",array,atomic,,syscall,cgroup,storm,"),
        "{out}"
    );
    // And what was written reads back to the same rows, and writes the same.
    let again = parse(out.as_bytes()).unwrap();
    assert_eq!(again, rows);
    assert_eq!(String::from_utf8(written(&again)).unwrap(), out);
}

/// A v4 run with a hot row (its precision, its throughput interval below
/// zero at the low end, its rounds, whether the methods agree) and a storm
/// row reads to those values, keeps its version (4), and is written back
/// under the v5 header: `wakeup` after `update`, empty for these counters,
/// `read` after it, `syscall`, every v4 value as it was.
#[test]
fn a_v4_run_with_hot_and_storm_rows_is_written_back_under_the_v5_header() {
    assert_eq!(SCHEMA_VERSION, 5);
    let path = fixture("run-schema-v4.csv");
    let original = fs::read(&path).unwrap();
    let rows = read_run(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.schema_version == 4));
    assert!(rows
        .iter()
        .all(|r| r.map == MapKind::Array && r.wakeup.is_empty()));
    assert_read_by_syscall(&rows);

    let hot = &rows[0];
    assert_eq!(hot.method, Method::Hot);
    assert_eq!(hot.stats_bias_ns, Some(11.9));
    assert_eq!(
        (
            hot.throughput_ns_per_event_ci95_lo,
            hot.throughput_ns_per_event_median,
            hot.throughput_ns_per_event_ci95_hi
        ),
        (Some(-3.1), Some(14.2), Some(30.5))
    );
    assert_eq!(hot.methods_agree, Some(true));
    assert_eq!(hot.trigger_ns_per_call, Some(402.7));
    assert_eq!(hot.rounds, Some(24));
    assert_eq!(hot.precision_target, Some(0.05));
    assert_eq!(hot.precision_reached, Some(0.0412));
    assert_eq!(hot.machine_noise_cv, Some(0.0123));
    assert_eq!(hot.machine_calibration_ns, Some(512.3));
    assert_eq!(hot.succeeded, Some(0));
    assert_eq!(hot.failed, hot.issued);

    let storm = &rows[1];
    assert_eq!(storm.method, Method::Storm);
    assert_eq!(storm.stats_bias_ns, Some(11.9));
    assert_eq!(storm.machine_noise_cv, Some(0.0131));
    assert_eq!(storm.machine_calibration_ns, Some(514.8));
    assert_eq!(
        (
            storm.throughput_ns_per_event_median,
            storm.methods_agree,
            storm.rounds,
            storm.precision_target,
            storm.precision_reached
        ),
        (None, None, None, None, None),
        "hot only"
    );
    // Same strategy, another method: two cells, not one.
    assert_ne!(hot.key(), storm.key());

    let out = String::from_utf8(written(&rows)).unwrap();
    let expected = as_current(&original);
    assert_eq!(expected.lines().next(), Some(current_header().as_str()));
    assert_eq!(out, expected);
    assert!(out.lines().skip(1).all(|l| l.starts_with("4,")), "{out}");
    assert!(out.contains(",array,atomic,,syscall,cgroup,hot,"), "{out}");
    let again = parse(out.as_bytes()).unwrap();
    assert_eq!(again, rows);
    assert_eq!(String::from_utf8(written(&again)).unwrap(), out);
}

/// v4's buffers (`stream`, the only mode a v4 buffer had) read with the
/// wakeup they had, their version kept, and are written back with it.
#[test]
fn v4_buffer_rows_get_the_wakeup_their_update_mode_had() {
    for (map, wakeup) in [
        ("ringbuf", "adaptive"),
        ("perf_event_array", "every_record"),
    ] {
        let bytes = fixture_edited("run-schema-v4.csv", |i, f, col| {
            if i == 1 {
                f[col("map")] = map.into();
                f[col("update")] = "stream".into();
            }
        });
        let rows = parse(&bytes).unwrap();
        assert_eq!(rows[1].map.name(), map);
        assert_eq!(rows[1].wakeup, wakeup);
        assert_eq!(rows[1].schema_version, 4);
        assert_eq!(rows[0].wakeup, "");
        assert_read_by_syscall(&rows);
        let out = String::from_utf8(written(&rows)).unwrap();
        assert_eq!(out, as_current(&bytes));
        assert!(
            out.contains(&format!(",{map},stream,{wakeup},syscall,cgroup,storm,")),
            "{out}"
        );
        assert_eq!(parse(out.as_bytes()).unwrap(), rows);
    }
}

/// The committed baseline (v4) still reads: its 108 rows keep version 4,
/// its buffers get the wakeup they ran with, and it is written back under the
/// v5 header with nothing else changed.
#[test]
fn the_committed_v4_baseline_reads_with_its_wakeups() {
    let original = baseline_bytes();
    let rows = parse(&original).unwrap();
    assert_eq!(rows.len(), 108);
    assert!(rows.iter().all(|r| r.schema_version == 4));
    assert_wakeups_derived(&rows);
    assert!(rows.iter().any(|r| r.wakeup == "adaptive"));
    assert!(rows.iter().any(|r| r.wakeup == "every_record"));
    assert_read_by_syscall(&rows);
    let out = String::from_utf8(written(&rows)).unwrap();
    assert_eq!(out, as_current(&original));
    assert_eq!(parse(out.as_bytes()).unwrap(), rows);
}

/// The v5 header is v4's with `wakeup` after `update` and `read` after
/// `wakeup`, and nothing else.
#[test]
fn the_v5_header_adds_wakeup_and_read_after_update() {
    let v4 = header_of("run-schema-v4.csv");
    let v5 = current_header();
    assert_eq!(
        v5,
        v4.replace(",update,filter,", ",update,wakeup,read,filter,")
    );
    assert_eq!(v5.split(',').count(), v4.split(',').count() + 2);
    assert_ne!(v5, v4);
    // It is the header the writer writes.
    let out = String::from_utf8(written(&[Row::default()])).unwrap();
    assert_eq!(out.lines().next(), Some(v5.as_str()));
}

/// The `wakeup` column's names are the ones `Wakeup::of` gives for every
/// strategy the CLI offers.
#[test]
fn wakeup_names_follow_map_and_update_mode() {
    let mut buffers = 0;
    for &map in MapKind::ALL {
        for &update in map.valid_updates() {
            let name = Wakeup::of(map, update).map_or_else(String::new, |w| w.name());
            assert_eq!(
                name,
                derived_wakeup(map.name(), update.name()),
                "{map}/{update}"
            );
            buffers += usize::from(!name.is_empty());
        }
    }
    // ringbuf: stream, output, no_wakeup, batch_wakeup; perf_event_array:
    // stream, batch_wakeup.
    assert_eq!(buffers, 6);
}

/// A v5 run, counters and buffers, hot and storm, read by syscall and by
/// mmap, is written back byte for byte: `wakeup` and `read` as they were
/// read, the version (5) kept.
#[test]
fn a_v5_run_is_written_back_byte_for_byte() {
    let path = fixture("run-schema-v5.csv");
    let original = fs::read(&path).unwrap();
    let rows = read_run(&path).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.schema_version == 5));
    assert_wakeups_derived(&rows);
    let strategies: Vec<(MapKind, UpdateMode, &str, ReadPath, Method)> = rows
        .iter()
        .map(|r| (r.map, r.update, r.wakeup.as_str(), r.read, r.method))
        .collect();
    assert_eq!(
        strategies,
        [
            (
                MapKind::Array,
                UpdateMode::Atomic,
                "",
                ReadPath::Syscall,
                Method::Hot
            ),
            (
                MapKind::Array,
                UpdateMode::Atomic,
                "",
                ReadPath::Syscall,
                Method::Storm
            ),
            (
                MapKind::Ringbuf,
                UpdateMode::NoWakeup,
                "poll_1ms",
                ReadPath::Syscall,
                Method::Hot
            ),
            (
                MapKind::PerfEventArray,
                UpdateMode::BatchWakeup,
                "batch_64",
                ReadPath::Syscall,
                Method::Storm
            ),
            (
                MapKind::Array,
                UpdateMode::Atomic,
                "",
                ReadPath::Mmap,
                Method::Storm
            ),
        ]
    );
    // The mapped read: the syscall storm row's strategy and figures, but
    // its own cell, named apart, with a read time below a microsecond kept
    // to three decimals.
    let (syscall, mapped) = (&rows[1], &rows[4]);
    assert_ne!(mapped.key(), syscall.key());
    assert_eq!(mapped.key().read, ReadPath::Mmap);
    assert_eq!(syscall.key().read, ReadPath::Syscall);
    assert_eq!(
        (
            mapped.read_us_ci95_lo,
            mapped.read_us_median,
            mapped.read_us_ci95_hi
        ),
        (Some(0.039), Some(0.042), Some(0.051))
    );
    assert_eq!(
        *mapped,
        Row {
            read: ReadPath::Mmap,
            read_us_median: Some(0.042),
            read_us_ci95_lo: Some(0.039),
            read_us_ci95_hi: Some(0.051),
            ..syscall.clone()
        }
    );
    assert_eq!(mapped.strategy_name(), "array/atomic/mmap");
    assert_eq!(syscall.strategy_name(), "array/atomic");
    let text = summaries(&rows);
    assert!(text.contains("array/atomic/mmap"), "{text}");
    let polled = &rows[2];
    assert_eq!(polled.counted, Some(100000));
    assert_eq!(polled.ns_per_event_median, Some(86.6));
    assert_eq!(polled.precision_reached, Some(0.0371));
    // Its own cell: another update mode than the other hot row's.
    assert_ne!(polled.key(), rows[0].key());

    // The counters are the v4 fixture's rows: the same values, `wakeup`
    // empty, read by syscall.
    let v4 = read_run(&fixture("run-schema-v4.csv")).unwrap();
    assert_eq!(v4.len(), 2);
    for (v5, v4) in rows.iter().zip(&v4) {
        assert_eq!(
            *v5,
            Row {
                schema_version: 5,
                ..v4.clone()
            }
        );
    }

    let out = String::from_utf8(written(&rows)).unwrap();
    assert_eq!(out, String::from_utf8(original).unwrap());
    assert!(
        out.contains(",ringbuf,no_wakeup,poll_1ms,syscall,cgroup,hot,"),
        "{out}"
    );
    assert!(
        out.contains(",perf_event_array,batch_wakeup,batch_64,syscall,cgroup,storm,"),
        "{out}"
    );
    assert!(out.contains(",array,atomic,,mmap,cgroup,storm,"), "{out}");
    assert_eq!(parse(out.as_bytes()).unwrap(), rows);
}

/// A v5 row's `wakeup` must be the one its map and update mode decide: any
/// other, or none on a buffer, is refused naming the column and the line.
/// Rows of an older version in the file get theirs filled in when empty, and
/// are held to it when not.
#[test]
fn a_v5_wakeup_of_another_batch_or_poll_interval_reads() {
    // A bpfstorm built with another batch or poll interval wrote them.
    for (row, value) in [(2, "poll_10ms"), (3, "batch_32")] {
        let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
            if i == row {
                f[col("wakeup")] = value.into();
            }
        });
        let rows = parse(&bytes).unwrap();
        assert_eq!(rows[row].wakeup, value);
    }
}

#[test]
fn a_v5_wakeup_that_disagrees_with_its_update_mode_is_refused() {
    assert_eq!(
        fixture_edited("run-schema-v5.csv", |_, _, _| {}),
        fs::read(fixture("run-schema-v5.csv")).unwrap()
    );
    // (row, column, value, the wakeup it must have)
    for (row, column, value, must) in [
        // ringbuf/no_wakeup
        (2, "wakeup", "adaptive", "poll_1ms"),
        (2, "wakeup", "", "poll_1ms"),
        (2, "wakeup", "poll_0ms", "poll_1ms"),
        (2, "wakeup", "poll_1s", "poll_1ms"),
        (2, "wakeup", "POLL_1MS", "poll_1ms"),
        (2, "wakeup", "every_record", "poll_1ms"),
        (2, "update", "stream", "adaptive"),
        (2, "update", "output", "adaptive"),
        (2, "update", "batch_wakeup", "batch_64"),
        // perf_event_array/batch_wakeup
        (3, "wakeup", "every_record", "batch_64"),
        (3, "wakeup", "batch_", "batch_64"),
        (3, "wakeup", "batch_+32", "batch_64"),
        (3, "wakeup", "poll_1ms", "batch_64"),
        (3, "wakeup", "", "batch_64"),
        (3, "update", "stream", "every_record"),
        // counters: a map holds the count, nothing wakes a reader
        (0, "wakeup", "adaptive", ""),
        (1, "wakeup", "poll_1ms", ""),
        (1, "wakeup", " ", ""),
    ] {
        let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
            if i == row {
                f[col(column)] = value.into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, ReadError::Invalid { column, line, .. }
                if column == "wakeup" && *line == row as u64 + 2),
            "row {row} {column}={value:?}: {err:?}"
        );
        assert!(
            text.contains(&format!("line {}, column `wakeup`", row + 2)),
            "{text}"
        );
        let shown = if column == "wakeup" {
            value
        } else {
            ["", "", "poll_1ms", "batch_64"][row]
        };
        assert!(text.contains(&format!("`{shown}`")), "{text}");
        let says = if must.is_empty() {
            "must be empty for a count in a map".to_string()
        } else {
            format!("its wakeup is `{must}`")
        };
        assert!(text.contains(&says), "{text}");
    }

    // Edits that keep map, update mode and wakeup in step are read.
    for (row, map, update, wakeup) in [
        (3, "ringbuf", "batch_wakeup", "batch_64"),
        (2, "ringbuf", "stream", "adaptive"),
        (2, "ringbuf", "output", "adaptive"),
        (3, "perf_event_array", "stream", "every_record"),
        (2, "percpu_array", "percpu", ""),
    ] {
        let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
            if i == row {
                f[col("map")] = map.into();
                f[col("update")] = update.into();
                f[col("wakeup")] = wakeup.into();
            }
        });
        let rows = parse(&bytes).unwrap();
        assert_eq!(rows[row].wakeup, wakeup, "{map}/{update}");
    }

    // An older row in a v5 file: an empty wakeup is filled in, its version
    // kept; one that is there must still be right.
    for version in ["1", "2", "3", "4"] {
        let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
            if i == 2 {
                f[col("schema_version")] = version.into();
                f[col("wakeup")] = String::new();
            }
        });
        let rows = parse(&bytes).unwrap();
        assert_eq!(rows[2].schema_version.to_string(), version);
        assert_eq!(rows[2].wakeup, "poll_1ms");
        let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
            if i == 2 {
                f[col("schema_version")] = version.into();
                f[col("wakeup")] = "adaptive".into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { column, line: 4, .. } if column == "wakeup"),
            "v{version}: {err:?}"
        );
    }

    // A v5 file with no `wakeup` column: its buffers lack what v5 must say.
    let original = fs::read_to_string(fixture("run-schema-v5.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(original.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let at = header.iter().position(|h| h == "wakeup").unwrap();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut without = header.clone();
    without.remove(at);
    writer.write_record(&without).unwrap();
    for record in reader.records() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        fields.remove(at);
        writer.write_record(&fields).unwrap();
    }
    let err = parse(&writer.into_inner().unwrap()).unwrap_err();
    assert!(
        matches!(&err, ReadError::Invalid { column, line: 4, .. } if column == "wakeup"),
        "{err:?}"
    );
}

/// A fixture with `edit` applied to each data row (0-based row index,
/// fields, column by name), written back as CSV.
fn fixture_edited(
    name: &str,
    edit: impl Fn(usize, &mut Vec<String>, &dyn Fn(&str) -> usize),
) -> Vec<u8> {
    let bytes = fs::read(fixture(name)).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for (i, record) in reader.records().enumerate() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        edit(i, &mut fields, &col);
        writer.write_record(&fields).unwrap();
    }
    writer.into_inner().unwrap()
}

/// The v4 fixture, edited as [`fixture_edited`] does.
fn v4_edited(edit: impl Fn(usize, &mut Vec<String>, &dyn Fn(&str) -> usize)) -> Vec<u8> {
    fixture_edited("run-schema-v4.csv", edit)
}

#[test]
fn v4_columns_are_checked_and_errors_name_them() {
    // Unedited, the helper gives the fixture back.
    assert_eq!(
        v4_edited(|_, _, _| {}),
        fs::read(fixture("run-schema-v4.csv")).unwrap()
    );
    for (column, value, says) in [
        ("method", "warm", "warm"),
        ("method", "Hot", "Hot"),
        ("method", "", "method"),
        ("precision_reached", "-0.01", ">= 0"),
        ("precision_target", "NaN", ">= 0"),
        ("stats_bias_ns", "-1.5", ">= 0"),
        ("trigger_ns_per_call", "inf", ">= 0"),
        ("machine_noise_cv", "-0.2", ">= 0"),
        ("machine_calibration_ns", "-512.3", ">= 0"),
        ("rounds", "-1", "whole number"),
        ("methods_agree", "yes", "`true` or `false`"),
        ("throughput_ns_per_event_ci95_lo", "-inf", "finite"),
        ("throughput_ns_per_event_median", "NaN", "finite"),
        ("ns_per_event_median", "inf", "finite"),
    ] {
        // Row 0 is the hot row, on line 2.
        let bytes = v4_edited(|i, f, col| {
            if i == 0 {
                f[col(column)] = value.into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, ReadError::Invalid { column: c, line: 2, .. } if c == column),
            "{column}={value}: {err:?}"
        );
        assert!(text.contains(&format!("column `{column}`")), "{text}");
        assert!(text.contains(says), "{column}={value}: {text}");
    }

    // A throughput median outside its own interval.
    let bytes = v4_edited(|i, f, col| {
        if i == 0 {
            f[col("throughput_ns_per_event_ci95_hi")] = "10".into();
        }
    });
    let err = parse(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("line 2, column `throughput_ns_per_event_median`"),
        "{err}"
    );
    assert!(err.contains("outside its 95% interval"), "{err}");

    // What may be below zero is: figures with the stats' own cost taken out.
    let bytes = v4_edited(|i, f, col| {
        if i == 1 {
            f[col("ns_per_event_ci95_lo")] = "-4.5".into();
            f[col("ns_per_event_median")] = "-1.2".into();
            f[col("ns_per_event_mean")] = "-0.7".into();
            f[col("throughput_ns_per_event_ci95_lo")] = "-9.5".into();
            f[col("throughput_ns_per_event_median")] = "-2".into();
            f[col("throughput_ns_per_event_ci95_hi")] = "7".into();
            f[col("precision_reached")] = "-0.0".into();
        }
    });
    let rows = parse(&bytes).unwrap();
    assert_eq!(rows[1].ns_per_event_median, Some(-1.2));
    assert_eq!(rows[1].throughput_ns_per_event_ci95_lo, Some(-9.5));
    assert!(rows[1].precision_reached.unwrap().is_sign_positive());

    // Version 5 is this bpfstorm's: a counter row relabelled 5 reads (its
    // empty `wakeup` is the one an array has).
    let bytes = v4_edited(|i, f, col| {
        if i == 1 {
            f[col("schema_version")] = "5".into();
        }
    });
    let rows = parse(&bytes).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.schema_version).collect::<Vec<_>>(),
        [4, 5]
    );

    // A file from a later bpfstorm: the version, not a column, is the problem.
    for fixture_name in ["run-schema-v4.csv", "run-schema-v5.csv"] {
        let bytes = fixture_edited(fixture_name, |i, f, col| {
            if i == 1 {
                f[col("schema_version")] = "6".into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, ReadError::Version { line: 3, found, .. } if found == "6"),
            "{fixture_name}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("schema version `6`"), "{text}");
        assert!(text.contains("reads versions 1 to 5 only"), "{text}");
    }
}

#[test]
fn semantics_rows_are_written_back_byte_for_byte() {
    for name in [
        "semantics-6.18.44-fc-v595.csv",
        "semantics-6.1.0-50-cloud-amd64-guest.csv",
    ] {
        let original = fs::read(results(name)).unwrap();
        let rows: Vec<SemanticsRow> = read_rows(&results(name)).unwrap();
        assert!(!rows.is_empty());
        assert_eq!(
            String::from_utf8(written(&rows)).unwrap(),
            String::from_utf8(original).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn v1_and_v2_runs_read_to_the_current_row_and_round_trip() {
    let v1 = read_run(&fixture("run-schema-v1.csv")).unwrap();
    let v2 = read_run(&results("kernels-rust-vm.csv")).unwrap();
    assert!(v1.iter().all(|r| r.schema_version == 1));
    assert!(v2.iter().all(|r| r.schema_version == 2));
    // v1 had no `timing` column: native.
    assert!(v1.iter().all(|r| r.timing == Timing::Native));
    assert!(v2.iter().any(|r| r.timing == Timing::Emulated));
    // v2 had no per-event figures: derived from the per-run ones.
    let r = v2
        .iter()
        .find(|r| {
            r.run_cnt.is_some() && r.counted.is_some_and(|c| c > 0) && r.ns_per_run_median.is_some()
        })
        .expect("a measured v2 row");
    let k = r.run_cnt.unwrap() as f64 / r.counted.unwrap() as f64;
    assert_eq!(r.ns_per_event_median, r.ns_per_run_median.map(|v| v * k));

    // Neither had v4's columns: storms, no hot figures.
    for r in v1.iter().chain(&v2) {
        assert_eq!(*r, as_before_v4(r));
    }
    // Nor v5's: each buffer's wakeup is the one its update mode had.
    assert_wakeups_derived(&v1);
    assert_wakeups_derived(&v2);
    assert_read_by_syscall(&v1);
    assert_read_by_syscall(&v2);
    // v1 has ring and perf buffers, v2 (the kernels run) ring buffers only.
    for (rows, wakeups) in [
        (&v1, &["", "adaptive", "every_record"][..]),
        (&v2, &["", "adaptive"][..]),
    ] {
        let mut seen: Vec<&str> = rows.iter().map(|r| r.wakeup.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, wakeups);
    }

    let header = current_header();
    for rows in [v1, v2] {
        let bytes = written(&rows);
        assert_eq!(
            String::from_utf8_lossy(&bytes).lines().next(),
            Some(header.as_str()),
            "written with the current columns"
        );
        assert_eq!(parse(&bytes).unwrap(), rows);
    }
}

#[test]
fn typed_columns_are_written_as_their_names() {
    let row = Row {
        schema_version: SCHEMA_VERSION,
        backend: "aya".into(),
        timing: Timing::Emulated,
        attach: AttachPoint::LsmBprmCommittedCreds,
        map: MapKind::PerfEventArray,
        update: UpdateMode::Stream,
        wakeup: "every_record".into(),
        filter: "cgroup".into(),
        method: Method::Hot,
        methods_agree: Some(false),
        target: "tiny".into(),
        spawn: "fork".into(),
        status: Status::Unsupported,
        error: "no LSM".into(),
        ..Row::default()
    };
    let text = String::from_utf8(written(std::slice::from_ref(&row))).unwrap();
    let line = text.lines().nth(1).unwrap();
    assert!(line.starts_with("5,"), "{line}");
    assert!(
        line.contains(",emulated,,aya,,lsm_bprm_committed_creds,perf_event_array,stream,every_record,syscall,cgroup,hot,tiny,fork,0,0,0,unsupported,no LSM,"),
        "{line}"
    );
    // `methods_agree`, then the nine v4 columns after it, empty.
    assert!(line.ends_with(",false,,,,,,,,,"), "{line}");
    assert_eq!(parse(text.as_bytes()).unwrap(), std::slice::from_ref(&row));
    // A v5 buffer row must say when its reader is woken.
    let silent = Row {
        wakeup: String::new(),
        ..row
    };
    let text = String::from_utf8(written(std::slice::from_ref(&silent))).unwrap();
    assert!(
        text.contains(",perf_event_array,stream,,syscall,cgroup,hot,"),
        "{text}"
    );
    let err = parse(text.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, ReadError::Invalid { column, line: 2, .. } if column == "wakeup"),
        "{err:?}"
    );
    // A mapped read is written as its name, and reads back.
    let mapped = Row {
        backend: "libbpf".into(),
        attach: AttachPoint::TpSysEnterExecve,
        map: MapKind::GlobalPercpu,
        update: UpdateMode::Percpu,
        wakeup: String::new(),
        read: ReadPath::Mmap,
        status: Status::Ok,
        error: String::new(),
        ..silent
    };
    let text = String::from_utf8(written(std::slice::from_ref(&mapped))).unwrap();
    assert!(
        text.contains(",tp_sys_enter_execve,global_percpu,percpu,,mmap,cgroup,hot,"),
        "{text}"
    );
    assert_eq!(
        parse(text.as_bytes()).unwrap(),
        std::slice::from_ref(&mapped)
    );

    let probe = ProbeRow {
        schema_version: 3,
        backend: "libbpf".into(),
        attach: AttachPoint::FentrySysExecve,
        map: MapKind::PercpuHash,
        supported: true,
        ..ProbeRow::default()
    };
    let text = String::from_utf8(written(std::slice::from_ref(&probe))).unwrap();
    assert_eq!(
        text.lines().nth(1),
        Some("3,,,,,0,,native,,libbpf,,fentry_sys_execve,percpu_hash,true,")
    );
    assert_eq!(
        parse_rows::<ProbeRow>(Path::new("p.csv"), text.as_bytes()).unwrap(),
        [probe]
    );
}

#[test]
fn an_update_mode_its_map_does_not_take_is_refused() {
    for (row, update, map) in [(0, "stream", "array"), (2, "racy", "ringbuf")] {
        let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
            if i == row {
                f[col("update")] = update.into();
                f[col("wakeup")] = String::new();
            }
        });
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { column, .. } if column == "update"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("`{update}` is not an update mode of {map}")),
            "{text}"
        );
    }
}

/// The read paths each map takes, written out here rather than asked of
/// `MapKind::read_paths`: a mapping for a count in a plain array's value
/// (the `array` map and the globals' sections), the lookup syscall for all.
fn derived_reads(map: &str) -> &'static [&'static str] {
    match map {
        "array" | "global" | "global_percpu" => &["syscall", "mmap"],
        _ => &["syscall"],
    }
}

#[test]
fn read_paths_follow_the_map() {
    let mut mapped = Vec::new();
    for &map in MapKind::ALL {
        let reads: Vec<&str> = map.read_paths().iter().map(|r| r.name()).collect();
        assert_eq!(reads, derived_reads(map.name()), "{map}");
        if reads.contains(&"mmap") {
            mapped.push(map);
        }
    }
    assert_eq!(
        mapped,
        [MapKind::Array, MapKind::Global, MapKind::GlobalPercpu]
    );
    assert_eq!(ReadPath::default(), ReadPath::Syscall);
    assert_eq!("mmap".parse::<ReadPath>(), Ok(ReadPath::Mmap));
    assert_eq!("syscall".parse::<ReadPath>(), Ok(ReadPath::Syscall));
}

/// A `read` its map cannot take (a mapping of a hash, a per-CPU map or a
/// buffer), or that is no read path at all, is refused naming the column
/// and the line; a mapped read of the array and the globals is read.
#[test]
fn a_read_path_its_map_cannot_take_is_refused() {
    // Row 4, on line 6, is the fixture's mapped read of the array.
    const MAPPED: usize = 4;
    let mut refused = Vec::new();
    for &map in MapKind::ALL {
        for &update in map.valid_updates() {
            let wakeup = derived_wakeup(map.name(), update.name());
            let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
                if i == MAPPED {
                    f[col("map")] = map.name().into();
                    f[col("update")] = update.name().into();
                    f[col("wakeup")] = wakeup.into();
                }
            });
            if derived_reads(map.name()).contains(&"mmap") {
                let rows = parse(&bytes).unwrap();
                assert_eq!(
                    (rows[MAPPED].map, rows[MAPPED].update, rows[MAPPED].read),
                    (map, update, ReadPath::Mmap)
                );
                assert_eq!(rows[MAPPED].strategy_name(), format!("{map}/{update}/mmap"));
                continue;
            }
            let err = parse(&bytes).unwrap_err();
            assert!(
                matches!(&err, ReadError::Invalid { column, line: 6, .. } if column == "read"),
                "{map}/{update}: {err:?}"
            );
            let text = err.to_string();
            assert!(text.contains("line 6, column `read`"), "{text}");
            assert!(
                text.contains(&format!(
                    "`mmap` is not a read path of {map}, which takes: syscall"
                )),
                "{text}"
            );
            // The same row read by syscall is fine.
            let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
                if i == MAPPED {
                    f[col("map")] = map.name().into();
                    f[col("update")] = update.name().into();
                    f[col("wakeup")] = wakeup.into();
                    f[col("read")] = "syscall".into();
                }
            });
            assert_eq!(parse(&bytes).unwrap()[MAPPED].read, ReadPath::Syscall);
            refused.push(map);
        }
    }
    refused.dedup();
    assert_eq!(
        refused,
        [
            MapKind::Hash,
            MapKind::PercpuArray,
            MapKind::PercpuHash,
            MapKind::Ringbuf,
            MapKind::PerfEventArray,
            MapKind::LruHash,
            MapKind::LruPercpuHash,
        ]
    );

    // Names that are no read path, on a map that takes both.
    for (row, value) in [
        (MAPPED, "bogus"),
        (MAPPED, "MMAP"),
        (MAPPED, " mmap"),
        (MAPPED, "mmap "),
        (MAPPED, ""),
        (0, "bogus"),
        (0, "Syscall"),
        (0, ""),
    ] {
        let bytes = fixture_edited("run-schema-v5.csv", |i, f, col| {
            if i == row {
                f[col("read")] = value.into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { column, line, .. }
                if column == "read" && *line == row as u64 + 2),
            "row {row} read={value:?}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("line {}, column `read`", row + 2)),
            "{text}"
        );
        assert!(text.contains(&format!("`{value}`")), "{text}");
    }
}
