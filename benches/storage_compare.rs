//! Helper binary of `benches/storage_compare.sh` (bytes per sample side by
//! side with Prometheus and VictoriaMetrics). Not a timed benchmark: with
//! no arguments (plain `cargo bench`) it prints its usage and exits.
//!
//! Subcommands (after `cargo bench --bench storage_compare --`):
//!
//! - `gen DATASET HOURS INSTANCES FORMAT FILE`: writes the deterministic
//!   workload (`benches/workload/mod.rs`) as text, one scrape after another.
//!   FORMAT `openmetrics` has timestamps in seconds with millisecond
//!   decimals and a final `# EOF` (for `promtool tsdb create-blocks-from
//!   openmetrics`); `prometheus` has integer millisecond timestamps (for
//!   `/api/v1/import/prometheus`). Histograms are written as their classic
//!   `_bucket{le}`, `_sum` and `_count` series. Prints the sample count.
//! - `watchpost DATASET HOURS INSTANCES DIR`: appends the same workload to
//!   a watchpost `Db` in DIR (one appender per scrape, histograms as
//!   first-class histogram samples), cuts the whole head into blocks and
//!   compacts them with the clock one day past the data (so every
//!   compaction window has ended), closes the database and prints the bytes
//!   of every block file and the sample count (classic samples, the same
//!   count as the text files).
//!
//! DATASET is `standard` (counters, gauges and 12-bucket histograms) or
//! `ints` (the integer-valued counters and gauges only). The first scrape
//! is at a 48 h-aligned time so that Prometheus's and watchpost's blocks
//! both cover the data without a block boundary inside it.

#[path = "workload/mod.rs"]
mod workload;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use watchpost::model::{Labels, ManualClock};
use watchpost::storage::{Appendable, Db, DbOptions, WalSyncPolicy};
use workload::{Workload, WorkloadConfig};

const HOUR_MS: i64 = 3_600_000;
/// 1,700,000,000,000 ms rounded down to a multiple of 48 h.
const START_MS: i64 = 1_699_833_600_000;

fn workload(dataset: &str, hours: i64, instances: usize) -> Workload {
    let histograms = match dataset {
        "standard" => true,
        "ints" => false,
        other => die(&format!("unknown dataset {other:?} (standard|ints)")),
    };
    Workload::new(WorkloadConfig {
        start_ms: START_MS,
        steps: (hours * HOUR_MS / 15_000) as usize,
        instances,
        histograms,
        ..WorkloadConfig::default()
    })
}

fn die(msg: &str) -> ! {
    eprintln!("storage_compare: {msg}");
    std::process::exit(2)
}

/// Writes `name{labels,extra} value ts` in the chosen format.
fn line(
    out: &mut impl Write,
    om: bool,
    labels: &Labels,
    suffix: &str,
    extra: Option<(&str, &str)>,
    v: f64,
    t: i64,
) -> std::io::Result<()> {
    write!(out, "{}{suffix}{{", labels.metric_name().unwrap_or(""))?;
    let mut first = true;
    for l in labels.iter().filter(|l| &*l.name != "__name__") {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        write!(out, "{}=\"{}\"", l.name, l.value)?;
    }
    if let Some((n, val)) = extra {
        if !first {
            out.write_all(b",")?;
        }
        write!(out, "{n}=\"{val}\"")?;
    }
    if om {
        writeln!(
            out,
            "}} {v} {}.{:03}",
            t.div_euclid(1000),
            t.rem_euclid(1000)
        )
    } else {
        writeln!(out, "}} {v} {t}")
    }
}

fn gen_text(w: &Workload, om: bool, path: &Path) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let les: Vec<String> = w
        .bounds
        .iter()
        .map(|b| b.to_string())
        .chain(["+Inf".to_string()])
        .collect();
    let mut n = 0u64;
    for s in w.scrapes() {
        for (i, t, v) in &s.floats {
            line(&mut out, om, &w.floats[*i].labels, "", None, *v, *t)?;
            n += 1;
        }
        for (i, t, h) in &s.histograms {
            let l = &w.histograms[*i].labels;
            for (le, c) in les.iter().zip(&h.bucket_counts) {
                line(&mut out, om, l, "_bucket", Some(("le", le)), *c, *t)?;
            }
            line(&mut out, om, l, "_sum", None, h.sum, *t)?;
            line(&mut out, om, l, "_count", None, h.count, *t)?;
            n += les.len() as u64 + 2;
        }
    }
    if om {
        out.write_all(b"# EOF\n")?;
    }
    out.flush()?;
    Ok(n)
}

fn load_watchpost(w: &Workload, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let end = w.cfg.start_ms + w.cfg.steps as i64 * w.cfg.step_ms + 1000;
    let clock = ManualClock::new(end);
    let mut opts = DbOptions::new(dir);
    opts.wal_sync = WalSyncPolicy::Interval(std::time::Duration::from_secs(1));
    opts.maintenance_interval = None;
    opts.clock = Arc::new(clock.clone());
    let db = Db::open(opts)?;
    let mut n = 0u64;
    for s in w.scrapes() {
        let mut a = db.appender();
        for (i, t, v) in &s.floats {
            a.append(&w.floats[*i].labels, *t, *v)?;
        }
        for (i, t, h) in &s.histograms {
            a.append_histogram(&w.histograms[*i].labels, *t, h)?;
        }
        a.commit()?;
        n += (s.floats.len() + s.histograms.len() * (w.bounds.len() + 3)) as u64;
    }
    db.cut_head_before(end)?;
    clock.set(end + 49 * HOUR_MS);
    db.maintain()?;
    let st = db.stats();
    db.close()?;
    println!(
        "watchpost: samples={n} blocks={} block_bytes={} bytes_per_sample={:.3}",
        st.blocks,
        st.block_bytes,
        st.block_bytes as f64 / n as f64
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let num = |s: &str| -> i64 {
        s.parse()
            .unwrap_or_else(|_| die(&format!("bad number {s:?}")))
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["gen", dataset, hours, inst, format, file] => {
            let w = workload(dataset, num(hours), num(inst) as usize);
            let om = match *format {
                "openmetrics" => true,
                "prometheus" => false,
                f => die(&format!("unknown format {f:?} (openmetrics|prometheus)")),
            };
            match gen_text(&w, om, Path::new(file)) {
                Ok(n) => println!("samples={n}"),
                Err(e) => die(&format!("writing {file}: {e}")),
            }
        }
        ["watchpost", dataset, hours, inst, dir] => {
            let w = workload(dataset, num(hours), num(inst) as usize);
            if let Err(e) = load_watchpost(&w, Path::new(dir)) {
                die(&format!("watchpost load into {dir}: {e}"));
            }
        }
        _ => {
            println!(
                "storage_compare: helper of benches/storage_compare.sh; usage:\n  \
                 gen standard|ints HOURS INSTANCES openmetrics|prometheus FILE\n  \
                 watchpost standard|ints HOURS INSTANCES DIR"
            );
        }
    }
}
