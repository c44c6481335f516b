//! The collateral-cost table: ns each hook adds to every syscall, or an
//! honest "not resolvable" when the interval spans zero.

use bpfstorm_common::{AttachPoint, CounterError};

use crate::output::table::{Align, Table};
use crate::sample::Estimate;
use crate::trigger::Collateral;

fn ns(e: &Estimate) -> String {
    format!("{:.1} [{:.1}, {:.1}]", e.median, e.lo, e.hi)
}

pub fn render(results: &[(AttachPoint, Result<Collateral, CounterError>)]) -> String {
    let mut table = Table::new(&[
        ("attach", Align::Left),
        ("without ns/syscall [95% CI]", Align::Right),
        ("with ns/syscall [95% CI]", Align::Right),
        ("added ns/syscall [95% CI]", Align::Right),
        ("verdict", Align::Left),
    ]);
    let mut errors = Vec::new();
    for (attach, result) in results {
        match result {
            Ok(c) => {
                let verdict = if c.resolvable() {
                    format!(
                        "adds {:.1} ns ({:+.0}%) to every syscall",
                        c.added.median,
                        c.added.median / c.baseline.median * 100.0
                    )
                } else {
                    format!(
                        "not resolvable at this noise (+-{:.1} ns)",
                        (c.added.hi - c.added.lo) / 2.0
                    )
                };
                table.push(vec![
                    attach.to_string(),
                    ns(&c.baseline),
                    ns(&c.hooked),
                    ns(&c.added),
                    verdict,
                ]);
            }
            Err(e) => {
                table.push(vec![
                    attach.to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "failed".into(),
                ]);
                errors.push(format!("{attach}: {e}"));
            }
        }
    }
    let mut out = table.render();
    for e in errors {
        out.push_str(&e);
        out.push('\n');
    }
    out
}
