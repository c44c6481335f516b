//! Where the cgroup hierarchies are mounted, from /proc/self/mountinfo.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Where the cgroup hierarchies we use are mounted.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Mounts {
    pub v2: Option<PathBuf>,
    pub pids_v1: Option<PathBuf>,
}

impl Mounts {
    pub fn read() -> io::Result<Mounts> {
        Ok(Mounts::parse(&fs::read("/proc/self/mountinfo")?))
    }

    fn parse(mountinfo: &[u8]) -> Mounts {
        let (mut whole_v2, mut partial_v2, mut pids_v1) = (None, None, None);
        for line in mountinfo.split(|&b| b == b'\n') {
            // id parent dev root mountpoint opts [optional...] - fstype source superopts
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let Some(sep) = fields.iter().position(|&f| f == b"-") else {
                continue;
            };
            let (Some(&root), Some(&mountpoint), Some(&fstype), Some(&superopts)) = (
                fields.get(3),
                fields.get(4),
                fields.get(sep + 1),
                fields.get(sep + 3),
            ) else {
                continue;
            };
            let path = || PathBuf::from(unescape(mountpoint));
            match fstype {
                // A bind mount of a sub-cgroup (root != "/") would put our
                // directory somewhere unexpected: prefer whole hierarchies.
                b"cgroup2" if root == b"/" => {
                    whole_v2.get_or_insert_with(path);
                }
                b"cgroup2" => {
                    partial_v2.get_or_insert_with(path);
                }
                b"cgroup" if superopts.split(|&b| b == b',').any(|o| o == b"pids") => {
                    pids_v1.get_or_insert_with(path);
                }
                _ => {}
            }
        }
        Mounts {
            v2: whole_v2.or(partial_v2),
            pids_v1,
        }
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space and so on).
fn unescape(field: &[u8]) -> OsString {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (field[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
25 1 0:23 / / rw - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn finds_hybrid_mounts() {
        assert_eq!(
            Mounts::parse(HYBRID.as_bytes()),
            Mounts {
                v2: Some("/sys/fs/cgroup/unified".into()),
                pids_v1: Some("/sys/fs/cgroup/pids".into()),
            }
        );
    }

    #[test]
    fn finds_pure_v2_mount() {
        assert_eq!(
            Mounts::parse(PURE_V2.as_bytes()),
            Mounts {
                v2: Some("/sys/fs/cgroup".into()),
                pids_v1: None,
            }
        );
    }

    #[test]
    fn prefers_whole_hierarchy_and_unescapes() {
        let info = "\
50 1 0:40 /sub /mnt/bound rw - cgroup2 cgroup2 rw
51 1 0:40 / /mnt/with\\040space rw - cgroup2 cgroup2 rw
";
        assert_eq!(
            Mounts::parse(info.as_bytes()).v2,
            Some("/mnt/with space".into())
        );
    }
}
