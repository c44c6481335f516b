//! UTC timestamps without a date library: civil-from-days on the Unix clock.

use std::time::{SystemTime, UNIX_EPOCH};

pub struct Timestamp {
    /// 2026-11-28T22:06:31Z
    pub rfc3339: String,
    /// 20261128T220631Z, for file names.
    pub compact: String,
}

pub fn now_utc() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    from_unix(secs)
}

fn from_unix(secs: u64) -> Timestamp {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    Timestamp {
        rfc3339: format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
        compact: format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(from_unix(0).rfc3339, "1970-01-01T00:00:00Z");
        assert_eq!(from_unix(1_795_903_591).rfc3339, "2026-11-28T22:06:31Z");
        assert_eq!(from_unix(951_782_400).compact, "20000229T000000Z");
    }
}
