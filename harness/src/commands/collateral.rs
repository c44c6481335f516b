//! `bpfstorm collateral`: what each hook adds to every syscall.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use bpfstorm::cli::CollateralArgs;
use bpfstorm::{interrupt, out, outln, output, trigger};
use bpfstorm_common::{Filter, MapKind, Strategy, UpdateMode};

pub fn command(args: CollateralArgs) -> Result<ExitCode> {
    let backend = args.backend.backend();
    let threads = match args.threads {
        Some(t) => t as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let length = Duration::from_millis(args.round_ms);
    let bar = output::progress::matrix_bar(args.attach.len());
    let mut results = Vec::new();
    for attach in &args.attach {
        bar.set_message(attach.to_string());
        bar.inc(1);
        let strategy = Strategy::new(*attach, MapKind::Array, UpdateMode::Atomic, Filter::All)?;
        let measured = trigger::collateral(
            backend.as_ref(),
            &strategy,
            threads,
            args.rounds as usize,
            length,
        );
        if interrupt::requested() {
            break;
        }
        results.push((*attach, measured));
    }
    let bias = (!interrupt::requested())
        .then(|| trigger::stats_bias(backend.as_ref(), threads, args.rounds as usize, length));
    bar.finish_and_clear();
    outln!(
        "getppid() loop on {threads} thread(s), {} interleaved pairs of {} ms rounds per hook ({} backend, array/atomic)",
        args.rounds, args.round_ms, backend.name()
    );
    outln!();
    out!("{}", output::collateral::render(&results));
    match bias {
        Some(Ok(b)) => outln!(
            "\nbpf_stats bias (raw_tp_sys_enter attached, stats on - off): {:+.1} ns per program run [95% CI {:+.1}, {:+.1}]{}",
            b.median,
            b.lo,
            b.hi,
            if b.lo > 0.0 || b.hi < 0.0 {
                "; ns/run figures from bpf_stats include it"
            } else {
                "; not resolvable at this noise"
            }
        ),
        Some(Err(e)) => outln!("\nbpf_stats bias: not measured: {e}"),
        None => {}
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    Ok(super::exit_status(failed))
}
