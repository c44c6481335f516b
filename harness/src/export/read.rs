//! Reading run CSVs back (compare, recommend): schemas v1 and v2, and every
//! problem reported with the file, the line and what to do.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;

use super::csv::{Row, SCHEMA_VERSION};

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a bpfstorm run CSV: it has no `schema_version` column")]
    NotRun { path: PathBuf },
    #[error(
        "{path}, line {line}: schema version `{found}`, but this bpfstorm reads versions \
         1 to {SCHEMA_VERSION} only: re-run `bpfstorm run`, or read it with the bpfstorm that wrote it"
    )]
    Version {
        path: PathBuf,
        line: u64,
        found: String,
    },
    #[error("{path}, line {line}: {message} (truncated or edited by hand?)")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path} holds no rows")]
    Empty { path: PathBuf },
}

/// Every row of a run CSV, or the first problem found.
pub fn read_run(path: &Path) -> Result<Vec<Row>, ReadError> {
    let bytes = fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_run(path, &bytes)
}

pub fn parse_run(path: &Path, bytes: &[u8]) -> Result<Vec<Row>, ReadError> {
    let malformed = |line: u64, message: String| ReadError::Malformed {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = ::csv::Reader::from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| malformed(1, e.to_string()))?
        .clone();
    let version_col = headers
        .iter()
        .position(|h| h == "schema_version")
        .ok_or_else(|| ReadError::NotRun {
            path: path.to_path_buf(),
        })?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            malformed(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let found = record.get(version_col).unwrap_or("");
        // v1 had no `timing` column: its rows read as native.
        if !(1..=SCHEMA_VERSION).any(|v| v.to_string() == found) {
            return Err(ReadError::Version {
                path: path.to_path_buf(),
                line,
                found: found.to_string(),
            });
        }
        let row: Row = record
            .deserialize(Some(&headers))
            .map_err(|e| malformed(line, e.to_string()))?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(ReadError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

/// Every row of a CSV this bpfstorm wrote other than a run's (a guest's
/// probe or semantics rows, to merge into the host's).
pub fn read_rows<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ReadError> {
    let bytes = fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    ::csv::Reader::from_reader(bytes.as_slice())
        .deserialize()
        .map(|row| {
            row.map_err(|e: ::csv::Error| ReadError::Malformed {
                path: path.to_path_buf(),
                line: e.position().map_or(0, |p| p.line()),
                message: e.to_string(),
            })
        })
        .collect()
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
