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
use bpfstorm_common::{AttachPoint, MapKind, UpdateMode};

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

/// The header line of the current schema, as the v4 fixture has it.
fn v4_header() -> String {
    let text = fs::read_to_string(fixture("run-schema-v4.csv")).unwrap();
    text.lines().next().unwrap().to_string()
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

/// A v3 run CSV as the v4 writer writes its rows: `method` after `filter`
/// and `storm` in it, the v4 columns at the end and empty, every v3 field
/// (`schema_version` included) as it was.
fn v3_as_v4(bytes: &[u8]) -> String {
    let mut reader = csv::Reader::from_reader(bytes);
    let mut header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert!(!header.iter().any(|h| h == "method"), "a v3 header");
    let method = header.iter().position(|h| h == "filter").unwrap() + 1;
    header.insert(method, "method".into());
    header.extend(V4_END_COLUMNS.map(String::from));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        fields.insert(method, "storm".into());
        fields.extend(V4_END_COLUMNS.map(|_| String::new()));
        writer.write_record(&fields).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

/// A v3 run (a copy of the v3 baseline, kept as a fixture) reads as storm
/// rows with the v4 figures empty, and is written back under the v4 header
/// with every v3 value unchanged, in its column: the version a row says it
/// was measured under (3) is kept, not rewritten.
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
    let out = String::from_utf8(written(&rows)).unwrap();
    let expected = v3_as_v4(&original);
    assert_eq!(expected.lines().next(), Some(v4_header().as_str()));
    assert_eq!(out, expected);
    assert!(out.lines().skip(1).all(|l| l.starts_with("3,")), "{out}");
    // And what was written reads back to the same rows, and writes the same.
    let again = parse(out.as_bytes()).unwrap();
    assert_eq!(again, rows);
    assert_eq!(String::from_utf8(written(&again)).unwrap(), out);
}

/// A v4 run with a hot row (its precision, its throughput interval below
/// zero at the low end, its rounds, whether the methods agree) and a storm
/// row reads to those values and is written back byte for byte.
#[test]
fn a_v4_run_with_hot_and_storm_rows_is_written_back_byte_for_byte() {
    let path = fixture("run-schema-v4.csv");
    let original = fs::read(&path).unwrap();
    let rows = read_run(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.schema_version == SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 4);

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

    assert_eq!(
        String::from_utf8(written(&rows)).unwrap(),
        String::from_utf8(original).unwrap()
    );
}

/// The v4 fixture with `edit` applied to each data row (0-based row index,
/// fields, column by name), written back as CSV.
fn v4_edited(edit: impl Fn(usize, &mut Vec<String>, &dyn Fn(&str) -> usize)) -> Vec<u8> {
    let bytes = fs::read(fixture("run-schema-v4.csv")).unwrap();
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

    // A file from a later bpfstorm: the version, not a column, is the problem.
    let bytes = v4_edited(|i, f, col| {
        if i == 1 {
            f[col("schema_version")] = "5".into();
        }
    });
    let err = parse(&bytes).unwrap_err();
    assert!(
        matches!(&err, ReadError::Version { line: 3, found, .. } if found == "5"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("schema version `5`"), "{text}");
    assert!(text.contains("reads versions 1 to 4 only"), "{text}");
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

    let header = v4_header();
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
    assert!(line.starts_with("4,"), "{line}");
    assert!(
        line.contains(",emulated,,aya,,lsm_bprm_committed_creds,perf_event_array,stream,cgroup,hot,tiny,fork,0,0,0,unsupported,no LSM,"),
        "{line}"
    );
    // `methods_agree`, then the nine v4 columns after it, empty.
    assert!(line.ends_with(",false,,,,,,,,,"), "{line}");
    assert_eq!(parse(text.as_bytes()).unwrap(), [row]);

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
