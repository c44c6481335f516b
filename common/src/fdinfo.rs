//! What the kernel says about a BPF program or map in `/proc/self/fdinfo`:
//! backend-independent, so every loader is measured the same way.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::RawFd;

use crate::ProgStats;

/// The `key: value` lines of `/proc/self/fdinfo/<fd>` holding numbers.
pub fn numbers(fd: RawFd) -> io::Result<HashMap<String, u64>> {
    let text = fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
    Ok(parse(&text))
}

/// The numbers of every fd of process `pid`: how a tool run as a child
/// shows which BPF programs and maps it holds (`prog_id`, `map_id`).
pub fn of_process(pid: u32) -> io::Result<Vec<HashMap<String, u64>>> {
    let mut all = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        match fs::read_to_string(entry?.path()) {
            Ok(text) => all.push(parse(&text)),
            // Closed since the listing.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}

fn parse(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            Some((key.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

fn field(map: &HashMap<String, u64>, key: &str, fd: RawFd) -> io::Result<u64> {
    map.get(key).copied().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("fd {fd} has no `{key}` in fdinfo: not a BPF object of this kind?"),
        )
    })
}

/// Run statistics of the BPF program behind `fd`.
pub fn prog_stats(fd: RawFd) -> io::Result<ProgStats> {
    let map = numbers(fd)?;
    Ok(ProgStats {
        run_cnt: field(&map, "run_cnt", fd)?,
        run_time_ns: field(&map, "run_time_ns", fd)?,
        recursion_misses: map.get("recursion_misses").copied().unwrap_or(0),
    })
}

/// Kernel memory charged to the BPF object behind `fd`, in bytes.
pub fn memlock(fd: RawFd) -> io::Result<u64> {
    field(&numbers(fd)?, "memlock", fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prog_fdinfo() {
        let text = "pos:\t0\nflags:\t02000002\nprog_type:\t5\nprog_tag:\tabc\nmemlock:\t4096\n\
                    prog_id:\t42\nrun_time_ns:\t1234\nrun_cnt:\t7\nrecursion_misses:\t0\n";
        let map = parse(text);
        assert_eq!(map["run_cnt"], 7);
        assert_eq!(map["memlock"], 4096);
        assert!(!map.contains_key("prog_tag"));
    }
}
