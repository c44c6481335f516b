//! Reading CSVs back, on hostile input, with no kernel and no root: text
//! from a file cannot forge markdown, special files are refused at once,
//! numbers are checked, errors name the column and the line, and no input
//! panics, hangs or grows without bound.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bpfstorm::compare::{self, MAX_KERNEL_COLUMNS};
use bpfstorm::export::csv::{
    CsvReport, Key, KeyCount, ProbeRow, Row, Status, Timing, Variant, SCHEMA_VERSION,
};
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
        ("spawn", "clone3"),
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
    // The v5 fixture (`wakeup` and `read` columns, buffers, a mapped read)
    // and the v6 one (`keys`, `max_entries`, `keys_live`, batched reads),
    // each damaged on a stream of its own so the baseline's rounds stay as
    // they were.
    let v5 = fs::read(fixture("run-schema-v5.csv")).unwrap();
    let mut v5_rng = Rng(0x2545_f491_4f6c_dd1d);
    let v6 = fs::read(fixture("run-schema-v6.csv")).unwrap();
    let mut v6_rng = Rng(0x5851_f42d_4c95_7f2d);
    let (mut accepted, mut refused) = (0, 0);
    let (mut v6_accepted, mut v6_refused) = (0, 0);
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
        for (clean, rng, counts) in [
            (&v5, &mut v5_rng, None),
            (&v6, &mut v6_rng, Some((&mut v6_accepted, &mut v6_refused))),
        ] {
            let ok = match parse(&mutate(rng, clean)) {
                Ok(rows) => {
                    rows.iter().for_each(assert_read_consistently);
                    render_all(&rows, &base);
                    true
                }
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.len() < 2048, "errors stay short: {text}");
                    assert!(!text.contains('\x1b') && !text.contains('\n'), "{text}");
                    false
                }
            };
            if let Some((accepted, refused)) = counts {
                *if ok { accepted } else { refused } += 1;
            }
        }
    }
    assert!(
        accepted > 10 && refused > 10,
        "{accepted} read, {refused} refused"
    );
    assert!(
        v6_accepted > 10 && v6_refused > 10,
        "v6: {v6_accepted} read, {v6_refused} refused"
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

/// The value in `column` of data row `row` (0-based) of CSV `text`.
fn field(text: &str, row: usize, column: &str) -> String {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let at = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column `{column}`"));
    let record = reader.records().nth(row).unwrap().unwrap();
    record[at].to_string()
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

/// The header line of the current schema (v7): the v6 fixture's (a real
/// run's) with `startup_ms` after `attach_ms`.
fn current_header() -> String {
    let v6 = header_of("run-schema-v6.csv");
    assert_eq!(v6.matches(",attach_ms,").count(), 1, "{v6}");
    v6.replace(",attach_ms,", ",attach_ms,startup_ms,")
}

/// `value` to `digits` decimals, as the writer rounds its figures.
fn rounded(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// `value` as the writer's CSV writes a float (`12.5`, not `12.500`).
fn csv_float(value: f64) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.serialize(value).unwrap();
    let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
    text.trim_end().to_string()
}

/// The startup a row before v7 reads to: its open, load and attach times
/// summed, to 3 decimals, where it has all three; else none.
fn summed_startup(
    open_ms: Option<f64>,
    load_ms: Option<f64>,
    attach_ms: Option<f64>,
) -> Option<f64> {
    Some(rounded(open_ms? + load_ms? + attach_ms?, 3))
}

/// The `startup_ms` field a row before v7 is written back with, from its
/// `open_ms`, `load_ms` and `attach_ms` fields: empty where one is.
fn summed_startup_field(open_ms: &str, load_ms: &str, attach_ms: &str) -> String {
    let ms = |f: &str| (!f.is_empty()).then(|| f.parse::<f64>().unwrap());
    summed_startup(ms(open_ms), ms(load_ms), ms(attach_ms)).map_or_else(String::new, csv_float)
}

/// Every row of a file before v7 has the startup of a library loader: its
/// three phases summed, or none where a phase is missing.
fn assert_startup_summed(rows: &[Row]) {
    for r in rows {
        assert_eq!(
            r.startup_ms,
            summed_startup(r.open_ms, r.load_ms, r.attach_ms),
            "{} {} {}",
            r.schema_version,
            r.backend,
            r.strategy_name()
        );
    }
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

/// An older run CSV (v3 to v6) as the current writer writes its rows:
/// from v4, `method` after `filter` (`storm` in it) and the v4 columns at
/// the end, empty; from v5, `wakeup` after `update`, holding what the row's
/// map and update mode decide, and `read` after it, `syscall` (the only read
/// path before v5); from v6, `keys` after `read` (`1`: a single key),
/// `max_entries` after it, empty, and `keys_live` after `perf_lost_records`,
/// empty; from v7, `startup_ms` after `attach_ms`, the row's open, load and
/// attach times summed to 3 decimals (empty where one of them is). Every
/// older field (`schema_version` included) is kept as it was, in its column.
fn as_current(bytes: &[u8]) -> String {
    let mut reader = csv::Reader::from_reader(bytes);
    let mut header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert!(
        !header.iter().any(|h| h == "startup_ms"),
        "a header before v7"
    );
    let v6_columns = header
        .iter()
        .filter(|h| ["keys", "max_entries", "keys_live"].contains(&h.as_str()))
        .count();
    assert!(
        v6_columns == 0 || v6_columns == 3,
        "v6's columns: all or none"
    );
    let before_v6 = v6_columns == 0;
    let before_v5 = !header.iter().any(|h| h == "wakeup" || h == "read");
    let before_v4 = !header.iter().any(|h| h == "method");
    let col = |header: &[String], n: &str| header.iter().position(|h| h == n).unwrap();
    let (map, update) = (col(&header, "map"), col(&header, "update"));
    let phases = ["open_ms", "load_ms", "attach_ms"].map(|n| col(&header, n));
    // The columns added since, in the order they are inserted: where each
    // goes in the header as it stands by then.
    let mut added: Vec<(usize, &str)> = Vec::new();
    let mut add = |header: &mut Vec<String>, at: usize, name: &'static str| {
        header.insert(at, name.into());
        added.push((at, name));
    };
    if before_v5 {
        add(&mut header, update + 1, "wakeup");
        add(&mut header, update + 2, "read");
    }
    if before_v4 {
        let method = col(&header, "filter") + 1;
        add(&mut header, method, "method");
        for name in V4_END_COLUMNS {
            let end = header.len();
            add(&mut header, end, name);
        }
    }
    if before_v6 {
        let read = col(&header, "read");
        add(&mut header, read + 1, "keys");
        add(&mut header, read + 2, "max_entries");
        let keys_live = col(&header, "perf_lost_records") + 1;
        add(&mut header, keys_live, "keys_live");
    }
    let startup = col(&header, "attach_ms") + 1;
    add(&mut header, startup, "startup_ms");

    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        let wakeup = derived_wakeup(&fields[map], &fields[update]);
        let [open, load, attach] = phases.map(|at| fields[at].as_str());
        let startup = summed_startup_field(open, load, attach);
        for &(at, name) in &added {
            let value = match name {
                "wakeup" => wakeup,
                "read" => "syscall",
                "method" => "storm",
                "keys" => "1",
                "startup_ms" => &startup,
                _ => "",
            };
            fields.insert(at, value.into());
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

/// Every row of a file before v6 counted in a single key: `keys` 1, no
/// `max_entries` or `keys_live`, a cell named as before.
fn assert_single_key(rows: &[Row]) {
    for r in rows {
        assert_eq!(
            (r.keys.get(), r.max_entries, r.keys_live),
            (1, None, None),
            "{} {}/{}",
            r.schema_version,
            r.map,
            r.update
        );
        assert_eq!(r.variant().keys, 1);
        assert_eq!(r.variant().max_entries, None);
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
/// rows with the v4 figures empty, each buffer's wakeup filled in from its
/// update mode, a single key and its startup summed from its three phases,
/// and is written back under the current header with every v3 value
/// unchanged, in its column: the version a row says it was measured under
/// (3) is kept, not rewritten.
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
    assert_single_key(&rows);
    assert_startup_summed(&rows);
    assert_eq!(rows[0].startup_ms, Some(11.063));
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
        out.contains(",ringbuf,stream,adaptive,syscall,1,,cgroup,storm,"),
        "{out}"
    );
    assert!(
        out.contains(",perf_event_array,stream,every_record,syscall,1,,cgroup,storm,"),
        "{out}"
    );
    assert!(
        out.contains(",array,atomic,,syscall,1,,cgroup,storm,"),
        "{out}"
    );
    // open, load, attach, then their sum, written as the writer writes a
    // float: no trailing zeros.
    assert_eq!(field(&out, 0, "startup_ms"), "11.063");
    assert!(out.contains(",1.475,9.364,0.224,11.063,"), "{out}");
    assert!(out.contains(",31.753,3.629,0.168,35.55,"), "{out}");
    // And what was written reads back to the same rows, and writes the same.
    let again = parse(out.as_bytes()).unwrap();
    assert_eq!(again, rows);
    assert_eq!(String::from_utf8(written(&again)).unwrap(), out);
}

/// A v4 run with a hot row (its precision, its throughput interval below
/// zero at the low end, its rounds, whether the methods agree) and a storm
/// row reads to those values, keeps its version (4), and is written back
/// under the current header: `wakeup` after `update`, empty for these
/// counters, `read` after it, `syscall`, a single key and no `max_entries`
/// or `keys_live`, `startup_ms` the sum of its three phases, every v4 value
/// as it was.
#[test]
fn a_v4_run_with_hot_and_storm_rows_is_written_back_under_the_current_header() {
    assert_eq!(SCHEMA_VERSION, 7);
    let path = fixture("run-schema-v4.csv");
    let original = fs::read(&path).unwrap();
    let rows = read_run(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.schema_version == 4));
    assert!(rows
        .iter()
        .all(|r| r.map == MapKind::Array && r.wakeup.is_empty()));
    assert_read_by_syscall(&rows);
    assert_single_key(&rows);
    assert_startup_summed(&rows);
    assert_eq!(
        rows.iter().map(|r| r.startup_ms).collect::<Vec<_>>(),
        [Some(10.349), Some(11.063)]
    );

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
    assert!(
        out.contains(",array,atomic,,syscall,1,,cgroup,hot,"),
        "{out}"
    );
    assert!(out.contains(",1.21,8.934,0.205,10.349,1.52,"), "{out}");
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
        assert_single_key(&rows);
        assert_startup_summed(&rows);
        let out = String::from_utf8(written(&rows)).unwrap();
        assert_eq!(out, as_current(&bytes));
        assert!(
            out.contains(&format!(",{map},stream,{wakeup},syscall,1,,cgroup,storm,")),
            "{out}"
        );
        assert_eq!(parse(out.as_bytes()).unwrap(), rows);
    }
}

/// The committed baseline (v4) still reads: its 108 rows keep version 4,
/// its buffers get the wakeup they ran with, every count a single key, each
/// startup its three phases summed, and it is written back under the
/// current header with nothing else changed.
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
    assert_single_key(&rows);
    assert_startup_summed(&rows);
    let out = String::from_utf8(written(&rows)).unwrap();
    assert_eq!(out, as_current(&original));
    assert_eq!(parse(out.as_bytes()).unwrap(), rows);
}

/// The v5 header is v4's with `wakeup` after `update` and `read` after
/// `wakeup`, and nothing else.
#[test]
fn the_v5_header_adds_wakeup_and_read_after_update() {
    let v4 = header_of("run-schema-v4.csv");
    let v5 = header_of("run-schema-v5.csv");
    assert_eq!(
        v5,
        v4.replace(",update,filter,", ",update,wakeup,read,filter,")
    );
    assert_eq!(v5.split(',').count(), v4.split(',').count() + 2);
    assert_ne!(v5, v4);
}

/// The v6 header is v5's with `keys` and `max_entries` after `read` and
/// `keys_live` after `perf_lost_records`, and nothing else; a file under it
/// still reads.
#[test]
fn the_v6_header_adds_keys_max_entries_and_keys_live() {
    let v5 = header_of("run-schema-v5.csv");
    let v6 = header_of("run-schema-v6.csv");
    assert_eq!(
        v6,
        v5.replace(",read,filter,", ",read,keys,max_entries,filter,")
            .replace(
                ",perf_lost_records,expected_oracle,",
                ",perf_lost_records,keys_live,expected_oracle,"
            )
    );
    assert_eq!(v6.split(',').count(), v5.split(',').count() + 3);
    assert_eq!(
        read_run(&fixture("run-schema-v6.csv")).unwrap().len(),
        V6_ROWS
    );
    let out = String::from_utf8(written(&[Row::default()])).unwrap();
    // A default row is a single key, its map's size and live keys unknown.
    assert_eq!(
        ["keys", "max_entries", "keys_live"].map(|c| field(&out, 0, c)),
        ["1", "", ""]
    );
}

/// The v7 header, the one the writer writes, is v6's with `startup_ms`
/// after `attach_ms`, and nothing else.
#[test]
fn the_v7_header_adds_startup_ms_after_attach_ms() {
    assert_eq!(SCHEMA_VERSION, 7);
    let v6 = header_of("run-schema-v6.csv");
    let out = String::from_utf8(written(&[Row::default()])).unwrap();
    let v7 = out.lines().next().unwrap();
    assert_eq!(v7, current_header());
    let columns: Vec<&str> = v7.split(',').collect();
    let startup = columns.iter().position(|&c| c == "startup_ms").unwrap();
    assert_eq!(columns[startup - 1], "attach_ms");
    let mut without = columns.clone();
    without.remove(startup);
    assert_eq!(without.join(","), v6);
    // A default row has no phases timed, and no startup.
    assert_eq!(
        ["open_ms", "load_ms", "attach_ms", "startup_ms"].map(|c| field(&out, 0, c)),
        ["", "", "", ""]
    );
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
/// mmap, reads with a single key and is written back under the current
/// header: `wakeup` and `read` as they were read, `keys` 1, `max_entries`
/// and `keys_live` empty, `startup_ms` the sum of its three phases, the
/// version (5) kept, every v5 value as it was.
#[test]
fn a_v5_run_is_written_back_under_the_current_header() {
    let path = fixture("run-schema-v5.csv");
    let original = fs::read(&path).unwrap();
    let rows = read_run(&path).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.schema_version == 5));
    assert_wakeups_derived(&rows);
    assert_single_key(&rows);
    assert_startup_summed(&rows);
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
    assert_eq!(mapped.key().variant.read, ReadPath::Mmap);
    assert_eq!(syscall.key().variant.read, ReadPath::Syscall);
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
    let expected = as_current(&original);
    assert_eq!(expected.lines().next(), Some(current_header().as_str()));
    assert_eq!(out, expected);
    assert!(out.lines().skip(1).all(|l| l.starts_with("5,")), "{out}");
    assert!(
        out.contains(",ringbuf,no_wakeup,poll_1ms,syscall,1,,cgroup,hot,"),
        "{out}"
    );
    assert!(
        out.contains(",perf_event_array,batch_wakeup,batch_64,syscall,1,,cgroup,storm,"),
        "{out}"
    );
    assert!(
        out.contains(",array,atomic,,mmap,1,,cgroup,storm,"),
        "{out}"
    );
    let again = parse(out.as_bytes()).unwrap();
    assert_eq!(again, rows);
    assert_eq!(String::from_utf8(written(&again)).unwrap(), out);
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
    bytes_edited(&fs::read(fixture(name)).unwrap(), edit)
}

/// CSV `bytes` with `edit` applied to each data row, as [`fixture_edited`]
/// does.
fn bytes_edited(
    bytes: &[u8],
    edit: impl Fn(usize, &mut Vec<String>, &dyn Fn(&str) -> usize),
) -> Vec<u8> {
    let mut reader = csv::Reader::from_reader(bytes);
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

/// CSV `bytes` without `column`, written back as CSV.
fn without_column(bytes: &[u8], column: &str) -> Vec<u8> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let at = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column `{column}`"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut fields = header;
    fields.remove(at);
    writer.write_record(&fields).unwrap();
    for record in reader.records() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        fields.remove(at);
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

    // Versions 5 to 7 are read too: a counter row relabelled any of them
    // reads (its empty `wakeup` is the one an array has; with no `keys`
    // column it is a single key). With no `startup_ms` column, a row before
    // v7 has its three phases summed; a v7 row, whose startup may be a
    // tool's own figure, has none.
    for version in [5, 6, 7] {
        let bytes = v4_edited(|i, f, col| {
            if i == 1 {
                f[col("schema_version")] = version.to_string();
            }
        });
        let rows = parse(&bytes).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.schema_version).collect::<Vec<_>>(),
            [4, version]
        );
        assert_single_key(&rows);
        assert_eq!(
            rows.iter().map(|r| r.startup_ms).collect::<Vec<_>>(),
            [Some(10.349), (version < 7).then_some(11.063)],
            "v{version}"
        );
    }

    // A file from a later bpfstorm: the version, not a column, is the problem.
    for fixture_name in [
        "run-schema-v4.csv",
        "run-schema-v5.csv",
        "run-schema-v6.csv",
    ] {
        let bytes = fixture_edited(fixture_name, |i, f, col| {
            if i == 1 {
                f[col("schema_version")] = "8".into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, ReadError::Version { line: 3, found, .. } if found == "8"),
            "{fixture_name}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("schema version `8`"), "{text}");
        assert!(text.contains("reads versions 1 to 7 only"), "{text}");
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
    // Nor v6's: every count a single key.
    assert_single_key(&v1);
    assert_single_key(&v2);
    // Nor v7's: each startup is the sum of its three phases.
    assert_startup_summed(&v1);
    assert_startup_summed(&v2);
    assert!(v1.iter().all(|r| r.startup_ms.is_some()));
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
    assert!(line.starts_with("7,"), "{line}");
    assert!(
        line.contains(",emulated,,aya,,lsm_bprm_committed_creds,perf_event_array,stream,every_record,syscall,1,,cgroup,hot,tiny,fork,0,0,0,unsupported,no LSM,"),
        "{line}"
    );
    // `methods_agree`, then the nine v4 columns after it, empty.
    assert!(line.ends_with(",false,,,,,,,,,"), "{line}");
    assert_eq!(parse(text.as_bytes()).unwrap(), std::slice::from_ref(&row));
    // A buffer row (v5 on) must say when its reader is woken.
    let silent = Row {
        wakeup: String::new(),
        ..row
    };
    let text = String::from_utf8(written(std::slice::from_ref(&silent))).unwrap();
    assert!(
        text.contains(",perf_event_array,stream,,syscall,1,,cgroup,hot,"),
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
        text.contains(",tp_sys_enter_execve,global_percpu,percpu,,mmap,1,,cgroup,hot,"),
        "{text}"
    );
    assert_eq!(
        parse(text.as_bytes()).unwrap(),
        std::slice::from_ref(&mapped)
    );
    // A count spread over keys (v6) is written with its keys, its map's
    // entries and the keys that held a count, and reads back.
    let keyed = Row {
        map: MapKind::LruHash,
        update: UpdateMode::Atomic,
        read: ReadPath::Batch,
        keys: KeyCount(64),
        max_entries: Some(16),
        perf_lost_records: Some(0),
        keys_live: Some(16),
        ..mapped
    };
    let text = String::from_utf8(written(std::slice::from_ref(&keyed))).unwrap();
    assert!(
        text.contains(",tp_sys_enter_execve,lru_hash,atomic,,batch,64,16,cgroup,hot,"),
        "{text}"
    );
    assert_eq!(
        ["perf_lost_records", "keys_live"].map(|c| field(&text, 0, c)),
        ["0", "16"]
    );
    assert_eq!(
        parse(text.as_bytes()).unwrap(),
        std::slice::from_ref(&keyed)
    );
    assert_eq!(keyed.strategy_name(), "lru_hash/atomic/k64/max16/batch");

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
/// `MapKind::read_paths`: the lookup syscall for all, batched lookups for
/// a count in a map (not a buffer's), and a mapping for a count in a plain
/// array's value (the `array` map and the globals' sections).
fn derived_reads(map: &str) -> &'static [&'static str] {
    match map {
        "array" | "global" | "global_percpu" => &["syscall", "batch", "mmap"],
        "ringbuf" | "perf_event_array" => &["syscall"],
        _ => &["syscall", "batch"],
    }
}

#[test]
fn read_paths_follow_the_map() {
    let (mut mapped, mut unbatched) = (Vec::new(), Vec::new());
    for &map in MapKind::ALL {
        let reads: Vec<&str> = map.read_paths().iter().map(|r| r.name()).collect();
        assert_eq!(reads, derived_reads(map.name()), "{map}");
        if reads.contains(&"mmap") {
            mapped.push(map);
        }
        if !reads.contains(&"batch") {
            unbatched.push(map);
        }
    }
    assert_eq!(
        mapped,
        [MapKind::Array, MapKind::Global, MapKind::GlobalPercpu]
    );
    // Only the buffers have no count in a map to look up in batches.
    assert_eq!(unbatched, [MapKind::Ringbuf, MapKind::PerfEventArray]);
    assert_eq!(ReadPath::default(), ReadPath::Syscall);
    assert_eq!("mmap".parse::<ReadPath>(), Ok(ReadPath::Mmap));
    assert_eq!("batch".parse::<ReadPath>(), Ok(ReadPath::Batch));
    assert_eq!("syscall".parse::<ReadPath>(), Ok(ReadPath::Syscall));
    assert_eq!(ReadPath::Batch.name(), "batch");
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
                    "`mmap` is not a read path of {map}, which takes: {}",
                    derived_reads(map.name()).join(", ")
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

// --- v6: counts spread over keys, batched reads -------------------------------

/// Rows of the v6 fixture, a real run: libbpf, c and aya (in that order for
/// each strategy); array, hash and lru_hash, atomic and racy, each with 1
/// and 64 keys, read by syscall and in batches; the ring buffer's four
/// update modes; storms only, one repetition.
const V6_ROWS: usize = 84;
/// libbpf's array/atomic, a single key read by syscall (line 2).
const V6_ARRAY: usize = 0;
/// libbpf's array/atomic/k64 (line 5).
const V6_ARRAY_K64: usize = 3;
/// libbpf's hash/atomic/k64/batch (line 35).
const V6_HASH_K64_BATCH: usize = 33;
/// libbpf's lru_hash/atomic/k64 (1024 entries; line 53).
const V6_LRU_K64: usize = 51;
/// libbpf's ringbuf/stream (line 74).
const V6_RINGBUF: usize = 72;

/// Values to put in a row: (column, value).
type Edits = &'static [(&'static str, &'static str)];

/// The v6 fixture, edited as [`fixture_edited`] does.
fn v6_edited(edit: impl Fn(usize, &mut Vec<String>, &dyn Fn(&str) -> usize)) -> Vec<u8> {
    fixture_edited("run-schema-v6.csv", edit)
}

/// What every row the reader accepts holds to, whatever the file: the
/// wakeup its map and update mode decide, a read path its map takes, at
/// least one key, more only on a map looked up by key that then names its
/// size, and never a map of 0 entries.
fn assert_read_consistently(r: &Row) {
    let what = format!("v{} {}", r.schema_version, r.strategy_name());
    let derived = Wakeup::of(r.map, r.update).map_or_else(String::new, |w| w.name());
    assert_eq!(r.wakeup, derived, "{what}");
    assert!(r.map.read_paths().contains(&r.read), "{what}");
    let keys = r.keys.get();
    assert!(keys >= 1, "{what}");
    if keys > 1 {
        assert!(r.map.takes_keys(), "{what}");
        assert!(r.max_entries.is_some(), "{what}");
    }
    assert_ne!(r.max_entries, Some(0), "{what}");
}

/// The distinct values of `f` over `rows`, sorted.
fn distinct(rows: &[Row], f: impl Fn(&Row) -> String) -> Vec<String> {
    let mut seen: Vec<String> = rows.iter().map(f).collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}

/// A v6 run (a real one) reads to its keys, its maps' entries and the keys
/// that held a count, and its startup summed from its three phases, and is
/// written back under the current header: `startup_ms` after `attach_ms`,
/// every v6 value as it was, the version (6) kept.
#[test]
fn a_v6_run_is_written_back_under_the_current_header() {
    assert_eq!(SCHEMA_VERSION, 7);
    let path = fixture("run-schema-v6.csv");
    let original = fs::read(&path).unwrap();
    let rows = read_run(&path).unwrap();
    assert_eq!(rows.len(), V6_ROWS);
    assert!(rows.iter().all(|r| r.schema_version == 6));
    assert!(rows
        .iter()
        .all(|r| r.method == Method::Storm && r.status == Status::Ok));
    assert_wakeups_derived(&rows);
    assert_eq!(
        distinct(&rows, |r| r.backend.clone()),
        ["aya", "c", "libbpf"]
    );
    assert_eq!(
        distinct(&rows, |r| r.map.to_string()),
        ["array", "hash", "lru_hash", "ringbuf"]
    );
    assert_eq!(distinct(&rows, |r| r.keys.get().to_string()), ["1", "64"]);
    assert_eq!(
        distinct(&rows, |r| r.read.to_string()),
        ["batch", "syscall"]
    );
    assert_startup_summed(&rows);
    assert!(rows.iter().all(|r| r.startup_ms.is_some()));
    // 10.777 + 14.405 + 0.118
    assert_eq!(rows[4].startup_ms, Some(25.3));

    for r in &rows {
        assert_read_consistently(r);
        let what = format!("{} {}", r.backend, r.strategy_name());
        let keys = r.keys.get();
        if r.map.is_stream() {
            // A buffer: one key, no map size, no keys to count.
            assert_eq!(
                (keys, r.max_entries, r.keys_live, r.read),
                (1, None, None, ReadPath::Syscall),
                "{what}"
            );
        } else {
            // A count in a map: one entry per key, the LRU map its 1024;
            // 600 execs of consecutive tgids left a count in every key.
            let entries = if r.map == MapKind::LruHash {
                1024
            } else {
                keys
            };
            assert_eq!(r.max_entries, Some(entries), "{what}");
            assert_eq!(r.keys_live, Some(u64::from(keys)), "{what}");
        }
    }
    assert_eq!(rows.iter().filter(|r| r.keys.get() == 64).count(), 36);
    assert_eq!(
        rows.iter().filter(|r| r.read == ReadPath::Batch).count(),
        36
    );

    // Tables name each strategy with its variant.
    let mut expected = Vec::new();
    for map in ["array", "hash", "lru_hash"] {
        for update in ["atomic", "racy"] {
            for suffix in ["", "/k64", "/batch", "/k64/batch"] {
                expected.push(format!("{map}/{update}{suffix}"));
            }
        }
    }
    for update in ["stream", "output", "no_wakeup", "batch_wakeup"] {
        expected.push(format!("ringbuf/{update}"));
    }
    expected.sort_unstable();
    assert_eq!(distinct(&rows, Row::strategy_name), expected);
    assert_eq!(
        rows[V6_HASH_K64_BATCH].strategy_name(),
        "hash/atomic/k64/batch"
    );
    // 1024 entries are room for 64 keys: nothing to say about the size.
    assert_eq!(rows[V6_LRU_K64].strategy_name(), "lru_hash/atomic/k64");

    let out = String::from_utf8(written(&rows)).unwrap();
    let expected = as_current(&original);
    assert_eq!(expected.lines().next(), Some(current_header().as_str()));
    assert_eq!(out, expected);
    assert!(out.lines().skip(1).all(|l| l.starts_with("6,")), "{out}");
    // Without `startup_ms`, what was written is the fixture, byte for byte.
    assert_eq!(without_column(out.as_bytes(), "startup_ms"), original);
    assert_eq!(field(&out, 4, "startup_ms"), "25.3");
    assert!(out.contains(",10.777,14.405,0.118,25.3,"), "{out}");
    assert!(
        out.contains(",hash,atomic,,batch,64,64,cgroup,storm,"),
        "{out}"
    );
    assert!(
        out.contains(",lru_hash,racy,,syscall,1,1024,cgroup,storm,"),
        "{out}"
    );
    assert!(
        out.contains(",ringbuf,stream,adaptive,syscall,1,,cgroup,storm,"),
        "{out}"
    );
    assert_eq!(parse(out.as_bytes()).unwrap(), rows);

    // Everything the rows go through takes them.
    render_all(&rows, &rows);
    assert_eq!(bpfstorm::aggregate::aggregate(&rows).len(), V6_ROWS);
    let text = summaries(&rows);
    assert!(text.contains("hash/atomic/k64/batch"), "{text}");
}

/// A count spread over keys is a cell of its own, apart from the single
/// key's with the same backend, strategy and read path, and only its
/// variant tells them apart; a single key's map size is no part of its
/// cell.
#[test]
fn v6_keyed_cells_are_apart_from_single_key_ones() {
    let rows = read_run(&fixture("run-schema-v6.csv")).unwrap();
    // Every row is a cell of its own (one repetition each).
    let mut keys: Vec<_> = rows.iter().map(Row::key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), V6_ROWS);

    let mut pairs = 0;
    for keyed in rows.iter().filter(|r| r.keys.get() > 1) {
        let single = rows
            .iter()
            .find(|r| {
                r.keys.get() == 1
                    && (&r.backend, r.map, r.update, r.read)
                        == (&keyed.backend, keyed.map, keyed.update, keyed.read)
            })
            .expect("a single-key twin");
        let (k, s) = (keyed.key(), single.key());
        assert_ne!(k, s, "{}", keyed.strategy_name());
        assert_eq!(
            k.variant,
            Variant {
                keys: 64,
                // Room for every key: its size is not part of the cell.
                max_entries: None,
                read: keyed.read,
            }
        );
        assert_eq!(
            s.variant,
            Variant {
                keys: 1,
                max_entries: None,
                read: single.read,
            }
        );
        // Nothing else sets them apart.
        assert_eq!(
            Key {
                variant: s.variant,
                ..k.clone()
            },
            s
        );
        pairs += 1;
    }
    assert_eq!(pairs, 36);
    // A single key read by syscall is the classic cell, as in older files:
    // a v6 cell matches a v5 one.
    assert_eq!(rows[V6_ARRAY].key().variant, Variant::CLASSIC);
    assert_eq!(rows[V6_ARRAY].strategy_name(), "array/atomic");
}

/// `keys` and `max_entries` a map cannot have are refused naming the column
/// and the line: 0 keys, more than one on a map not looked up by key (the
/// globals and the buffers), more than one with no map size, a map of 0
/// entries, and values that are no count at all.
#[test]
fn keys_and_max_entries_a_map_cannot_have_are_refused() {
    // Unedited, the helper gives the fixture back.
    assert_eq!(
        v6_edited(|_, _, _| {}),
        fs::read(fixture("run-schema-v6.csv")).unwrap()
    );
    // (row, its edits, the column refused, what the error says)
    let cases: &[(usize, Edits, &str, &str)] = &[
        (V6_ARRAY, &[("keys", "0")], "keys", "0 keys"),
        (V6_ARRAY_K64, &[("keys", "0")], "keys", "0 keys"),
        (V6_RINGBUF, &[("keys", "0")], "keys", "0 keys"),
        (V6_RINGBUF, &[("keys", "64")], "keys", "64 keys on ringbuf"),
        (
            V6_RINGBUF,
            &[("keys", "2"), ("max_entries", "64")],
            "keys",
            "2 keys on ringbuf",
        ),
        (
            V6_RINGBUF,
            &[
                ("map", "perf_event_array"),
                ("wakeup", "every_record"),
                ("keys", "64"),
            ],
            "keys",
            "64 keys on perf_event_array",
        ),
        (
            V6_ARRAY_K64,
            &[("map", "global"), ("max_entries", "")],
            "keys",
            "64 keys on global",
        ),
        (
            V6_ARRAY_K64,
            &[("map", "global")],
            "keys",
            "64 keys on global",
        ),
        (
            V6_ARRAY_K64,
            &[
                ("map", "global_percpu"),
                ("update", "percpu"),
                ("max_entries", ""),
            ],
            "keys",
            "64 keys on global_percpu",
        ),
        (
            V6_ARRAY_K64,
            &[("max_entries", "")],
            "max_entries",
            "empty with 64 keys",
        ),
        (
            V6_HASH_K64_BATCH,
            &[("max_entries", "")],
            "max_entries",
            "empty with 64 keys",
        ),
        (
            V6_ARRAY_K64,
            &[("keys", "2"), ("max_entries", "")],
            "max_entries",
            "empty with 2 keys",
        ),
        (
            V6_ARRAY_K64,
            &[("max_entries", "0")],
            "max_entries",
            "a map of 0 entries",
        ),
        (
            V6_ARRAY,
            &[("max_entries", "0")],
            "max_entries",
            "a map of 0 entries",
        ),
        (
            V6_LRU_K64,
            &[("max_entries", "0")],
            "max_entries",
            "a map of 0 entries",
        ),
        // No count at all.
        (V6_ARRAY, &[("keys", "-1")], "keys", "`-1`"),
        (V6_ARRAY, &[("keys", "many")], "keys", "`many`"),
        (V6_ARRAY, &[("keys", " 1")], "keys", "` 1`"),
        (V6_ARRAY, &[("keys", "")], "keys", "``"),
        (V6_ARRAY, &[("keys", "4294967296")], "keys", "whole number"),
        (
            V6_ARRAY_K64,
            &[("max_entries", "-64")],
            "max_entries",
            "`-64`",
        ),
        (
            V6_ARRAY_K64,
            &[("max_entries", "4294967296")],
            "max_entries",
            "whole number",
        ),
        (V6_ARRAY_K64, &[("keys_live", "-1")], "keys_live", "`-1`"),
        (
            V6_ARRAY_K64,
            &[("keys_live", "18446744073709551616")],
            "keys_live",
            "whole number",
        ),
    ];
    for &(row, edits, column, says) in cases {
        let bytes = v6_edited(|i, f, col| {
            if i == row {
                for &(c, v) in edits {
                    f[col(c)] = v.into();
                }
            }
        });
        let err = parse(&bytes).unwrap_err();
        let line = row as u64 + 2;
        assert!(
            matches!(&err, ReadError::Invalid { column: c, line: l, .. }
                if c == column && *l == line),
            "row {row} {edits:?}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("line {line}, column `{column}`")),
            "{text}"
        );
        assert!(text.contains(says), "row {row} {edits:?}: {text}");
    }

    // What a map may have is read.
    let read = |row: usize, edits: &[(&str, &str)]| {
        let bytes = v6_edited(|i, f, col| {
            if i == row {
                for &(c, v) in edits {
                    f[col(c)] = v.into();
                }
            }
        });
        let rows = parse(&bytes).unwrap_or_else(|e| panic!("row {row} {edits:?}: {e}"));
        rows[row].clone()
    };
    // Fewer entries than keys (a map that evicts, or refuses new keys):
    // a cell of its own, named with its size.
    let small = read(V6_HASH_K64_BATCH, &[("max_entries", "16")]);
    assert_eq!(small.max_entries, Some(16));
    assert_eq!(small.strategy_name(), "hash/atomic/k64/max16/batch");
    let rows = read_run(&fixture("run-schema-v6.csv")).unwrap();
    assert_ne!(small.key(), rows[V6_HASH_K64_BATCH].key());
    let small = read(V6_LRU_K64, &[("max_entries", "16")]);
    assert_eq!(small.strategy_name(), "lru_hash/atomic/k64/max16");
    // A single key of unknown size, as older files have it; on a global.
    let single = read(V6_ARRAY, &[("max_entries", ""), ("keys_live", "")]);
    assert_eq!((single.max_entries, single.keys_live), (None, None));
    assert_eq!(single.key(), rows[V6_ARRAY].key());
    let global = read(V6_ARRAY, &[("map", "global"), ("max_entries", "")]);
    assert_eq!(global.strategy_name(), "global/atomic");
    // Two keys, the fewest that spread a count.
    let two = read(V6_ARRAY_K64, &[("keys", "2"), ("max_entries", "2")]);
    assert_eq!(two.strategy_name(), "array/atomic/k2");
}

/// A batched read is taken by every count in a map and refused on a
/// buffer, naming the column and the line.
#[test]
fn a_batch_read_its_map_cannot_take_is_refused() {
    let mut refused = Vec::new();
    for &map in MapKind::ALL {
        let update = map.classic_update();
        let wakeup = derived_wakeup(map.name(), update.name());
        let bytes = v6_edited(|i, f, col| {
            if i == V6_ARRAY {
                f[col("map")] = map.name().into();
                f[col("update")] = update.name().into();
                f[col("wakeup")] = wakeup.into();
                f[col("read")] = "batch".into();
                if !map.takes_keys() {
                    f[col("max_entries")] = String::new();
                    f[col("keys_live")] = String::new();
                }
            }
        });
        if derived_reads(map.name()).contains(&"batch") {
            let rows = parse(&bytes).unwrap_or_else(|e| panic!("{map}: {e}"));
            assert_eq!(rows[V6_ARRAY].read, ReadPath::Batch);
            assert_eq!(
                rows[V6_ARRAY].strategy_name(),
                format!("{map}/{update}/batch")
            );
            continue;
        }
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { column, line: 2, .. } if column == "read"),
            "{map}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("line 2, column `read`"), "{text}");
        assert!(
            text.contains(&format!(
                "`batch` is not a read path of {map}, which takes: syscall"
            )),
            "{text}"
        );
        refused.push(map);
    }
    assert_eq!(refused, [MapKind::Ringbuf, MapKind::PerfEventArray]);
    // The fixture's own ring buffer row, read in batches.
    let bytes = v6_edited(|i, f, col| {
        if i == V6_RINGBUF {
            f[col("read")] = "batch".into();
        }
    });
    let err = parse(&bytes).unwrap_err();
    assert!(
        matches!(&err, ReadError::Invalid { column, line: 74, .. } if column == "read"),
        "{err:?}"
    );
    // Names that are no read path.
    for value in ["BATCH", "batched", " batch", ""] {
        let bytes = v6_edited(|i, f, col| {
            if i == V6_HASH_K64_BATCH {
                f[col("read")] = value.into();
            }
        });
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { column, line: 35, .. } if column == "read"),
            "read={value:?}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("`{value}`")), "{err}");
    }
}

// --- v7: startup, a loader's three phases or a tool's own figure -------------

/// A v7 row's `startup_ms` is its own: a figure that is not the sum of its
/// phases (a tool's, from spawning it to its probes attached, with no
/// phases at all or with them) is read and written back as it was, and an
/// empty one stays empty. A row before v7 in a v7 file with no startup gets
/// its phases' sum, or none where a phase is missing. A startup that is no
/// time is refused, naming the column and the line.
#[test]
fn a_v7_startup_that_is_not_its_phases_sum_is_kept_as_written() {
    let original = read_run(&fixture("run-schema-v6.csv")).unwrap();
    // The v6 fixture as the writer writes it: the current header, every
    // row still v6, its startup its phases' sum.
    let current = written(&original);
    assert_eq!(
        String::from_utf8(current.clone()).unwrap(),
        as_current(&fs::read(fixture("run-schema-v6.csv")).unwrap())
    );
    let edited = |row: usize, edits: &[(&str, &str)]| {
        bytes_edited(&current, |i, f, col| {
            if i == row {
                for &(c, v) in edits {
                    f[col(c)] = v.into();
                }
            }
        })
    };
    // Read, written back byte for byte, and every other row as it was.
    let read_back = |row: usize, edits: &[(&str, &str)]| -> Row {
        let bytes = edited(row, edits);
        let rows = parse(&bytes).unwrap_or_else(|e| panic!("row {row} {edits:?}: {e}"));
        assert_eq!(
            String::from_utf8(written(&rows)).unwrap(),
            String::from_utf8(bytes).unwrap(),
            "row {row} {edits:?}"
        );
        for (i, (r, o)) in rows.iter().zip(&original).enumerate() {
            if i != row {
                assert_eq!(r, o, "row {i}");
            }
        }
        rows[row].clone()
    };
    let v6 = &original[V6_ARRAY];
    let sum = summed_startup(v6.open_ms, v6.load_ms, v6.attach_ms);
    assert_eq!(v6.startup_ms, sum);

    // A tool's startup beside a loader's phases: kept, not its phases' sum.
    let tool = read_back(
        V6_ARRAY,
        &[("schema_version", "7"), ("startup_ms", "812.5")],
    );
    assert_eq!(tool.schema_version, 7);
    assert_eq!(tool.startup_ms, Some(812.5));
    assert_ne!(tool.startup_ms, sum);
    assert_eq!(
        (tool.open_ms, tool.load_ms, tool.attach_ms),
        (v6.open_ms, v6.load_ms, v6.attach_ms)
    );
    // A tool with no phases timed: its startup alone.
    let phaseless = read_back(
        V6_ARRAY,
        &[
            ("schema_version", "7"),
            ("open_ms", ""),
            ("load_ms", ""),
            ("attach_ms", ""),
            ("startup_ms", "812.5"),
        ],
    );
    assert_eq!(
        (
            phaseless.open_ms,
            phaseless.load_ms,
            phaseless.attach_ms,
            phaseless.startup_ms
        ),
        (None, None, None, Some(812.5))
    );
    // A v7 row with no startup has none: a v7 row's is never derived.
    let none = read_back(V6_ARRAY, &[("schema_version", "7"), ("startup_ms", "")]);
    assert_eq!(none.startup_ms, None);

    // A v6 row in the same file with no startup: its phases' sum, written
    // back (as the writer writes a float) where it was left out.
    let bytes = edited(V6_ARRAY, &[("startup_ms", "")]);
    assert_ne!(bytes, current);
    let rows = parse(&bytes).unwrap();
    assert_eq!(rows, original);
    assert_eq!(written(&rows), current);
    assert_eq!(
        field(
            &String::from_utf8(current.clone()).unwrap(),
            V6_ARRAY,
            "startup_ms"
        ),
        csv_float(sum.unwrap())
    );
    // With a phase missing, none.
    let unattached = read_back(V6_ARRAY, &[("attach_ms", ""), ("startup_ms", "")]);
    assert_eq!((unattached.attach_ms, unattached.startup_ms), (None, None));

    // No time at all.
    for value in ["-1", "-0.001", "NaN", "inf", "-inf", "fast", "1,5"] {
        for version in ["6", "7"] {
            let bytes = edited(
                V6_HASH_K64_BATCH,
                &[("schema_version", version), ("startup_ms", value)],
            );
            let err = parse(&bytes).unwrap_err();
            assert!(
                matches!(&err, ReadError::Invalid { column, line: 35, .. }
                    if column == "startup_ms"),
                "v{version} startup_ms={value:?}: {err:?}"
            );
            assert!(
                err.to_string().contains("line 35, column `startup_ms`"),
                "{err}"
            );
        }
    }
}
