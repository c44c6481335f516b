//! `bpfstorm probe`: what this kernel lets each backend do, found by trying.

use std::path::Path;

use bpfstorm_common::{tracefs, AttachPoint, Backend, Filter, MapKind, Strategy};

use crate::bpf_stats::StatsGuard;
use crate::export::csv::{ProbeRow, RunInfo, SCHEMA_VERSION};
use crate::output::table::{Align, Table};

/// The outcome of loading and attaching one attach point x map kind.
pub struct Probe {
    pub backend: &'static str,
    pub attach: AttachPoint,
    pub map: MapKind,
    /// `None` when it loaded, attached and was torn down again.
    pub refusal: Option<String>,
}

pub fn probe(backend: &dyn Backend) -> Vec<Probe> {
    let mut out = Vec::new();
    for &attach in AttachPoint::ALL {
        for &map in MapKind::ALL {
            let update = map.valid_updates()[0];
            let refusal = Strategy::new(attach, map, update, Filter::All)
                .map_err(|e| e.to_string())
                .and_then(|s| backend.open(&s).map(drop).map_err(|e| e.to_string()))
                .err();
            out.push(Probe {
                backend: backend.name(),
                attach,
                map,
                refusal,
            });
        }
    }
    out
}

/// Facts about the kernel that decide what can be measured at all.
pub fn facts() -> Vec<(&'static str, String)> {
    let yes_no = |ok: bool, no: &str| {
        if ok {
            "yes".to_string()
        } else {
            no.to_string()
        }
    };
    vec![
        (
            "kernel BTF (/sys/kernel/btf/vmlinux)",
            yes_no(
                Path::new("/sys/kernel/btf/vmlinux").exists(),
                "no: CO-RE and tp_btf cannot work",
            ),
        ),
        (
            "tracefs",
            match tracefs::ensure_mounted() {
                Ok(p) => format!("yes ({})", p.display()),
                Err(e) => format!("no: {e}"),
            },
        ),
        (
            "cgroup v2",
            match crate::cgroup::v2_mount() {
                Ok(p) => format!("yes ({})", p.display()),
                Err(e) => format!("no: {e}"),
            },
        ),
        (
            "BPF run-time stats (BPF_ENABLE_STATS)",
            match StatsGuard::enable() {
                Ok(_) => "yes".into(),
                Err(e) => format!("no: {e}"),
            },
        ),
    ]
}

/// Probe rows in the probe CSV's schema, so kernels can be compared.
pub fn rows(run: &RunInfo, backend: &dyn Backend, probes: &[Probe]) -> Vec<ProbeRow> {
    probes
        .iter()
        .filter(|p| p.backend == backend.name())
        .map(|p| ProbeRow {
            schema_version: SCHEMA_VERSION,
            run_id: run.run_id.clone(),
            timestamp_utc: run.timestamp_utc.clone(),
            host: run.host.host.clone(),
            kernel: run.host.kernel.clone(),
            cpus: run.host.cpus,
            cpu_model: run.host.cpu_model.clone(),
            timing: run.host.timing,
            git_rev: run.host.git_rev.clone(),
            backend: p.backend.to_string(),
            backend_version: backend.version(),
            attach: p.attach,
            map: p.map,
            supported: p.refusal.is_none(),
            reason: p.refusal.clone().unwrap_or_default(),
        })
        .collect()
}

pub fn render(probes: &[Probe]) -> String {
    let mut columns = vec![("backend", Align::Left), ("attach", Align::Left)];
    columns.extend(MapKind::ALL.iter().map(|m| (m.name(), Align::Left)));
    let mut table = Table::new(&columns);
    let mut reasons = Vec::new();
    for row in probes.chunks(MapKind::ALL.len()) {
        let mut cells = vec![row[0].backend.to_string(), row[0].attach.to_string()];
        for p in row {
            cells.push(match &p.refusal {
                None => "ok".into(),
                Some(reason) => {
                    // The reason is nearly always the attach point's, whatever the map.
                    let line = format!("{} {}: {reason}", p.backend, p.attach);
                    if !reasons.contains(&line) {
                        reasons.push(line);
                    }
                    "refused".into()
                }
            });
        }
        table.push(cells);
    }
    let mut out = table.render();
    for r in reasons {
        out.push_str(&r);
        out.push('\n');
    }
    out
}
