//! RSS and CPU of the server's process trees, sampled from /proc while the
//! load runs (each watched pid together with all its descendants, so a
//! pre-forking peer or PostgreSQL's backends are counted whole).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CLOCK_TICKS: f64 = 100.0;
const PAGE: u64 = 4096;

#[derive(Debug, Clone, Default)]
pub struct Resources {
    /// Per watched pid: (pid, peak RSS of its tree in bytes, CPU seconds of
    /// its tree during the load).
    pub trees: Vec<(u32, u64, f64)>,
    /// Fraction of the machine's CPU time that was busy.
    pub machine_busy: f64,
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Resources>,
}

struct ProcStat {
    ppid: u32,
    cpu_ticks: u64,
    rss_pages: u64,
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields start after its ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(ProcStat {
        ppid: fields.get(1)?.parse().ok()?,
        cpu_ticks: fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?,
        rss_pages: fields.get(21)?.parse().ok()?,
    })
}

fn all_processes() -> HashMap<u32, ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

fn tree_of(root: u32, procs: &HashMap<u32, ProcStat>) -> Vec<u32> {
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            procs
                .iter()
                .filter(|(_, s)| s.ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    tree
}

fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((values.iter().sum(), idle))
}

impl Sampler {
    pub fn start(pids: &[u32]) -> Self {
        let pids = pids.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::task::spawn_blocking(move || {
            let machine_start = machine_ticks();
            // Per pid of each tree: CPU ticks at first sight and last seen.
            let mut first: Vec<HashMap<u32, u64>> = vec![HashMap::new(); pids.len()];
            let mut last: Vec<HashMap<u32, u64>> = vec![HashMap::new(); pids.len()];
            let mut peak = vec![0u64; pids.len()];
            let started = Instant::now();
            let mut initial = true;
            loop {
                let procs = all_processes();
                for (i, root) in pids.iter().enumerate() {
                    let mut rss = 0;
                    for pid in tree_of(*root, &procs) {
                        if let Some(s) = procs.get(&pid) {
                            rss += s.rss_pages * PAGE;
                            // A process born during the run started at 0.
                            first[i]
                                .entry(pid)
                                .or_insert(if initial { s.cpu_ticks } else { 0 });
                            last[i].insert(pid, s.cpu_ticks);
                        }
                    }
                    peak[i] = peak[i].max(rss);
                }
                initial = false;
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = started;
            let machine_busy = match (machine_start, machine_ticks()) {
                (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => {
                    1.0 - (i1 - i0) as f64 / (t1 - t0) as f64
                }
                _ => 0.0,
            };
            Resources {
                trees: pids
                    .iter()
                    .enumerate()
                    .map(|(i, pid)| {
                        let ticks: u64 = last[i]
                            .iter()
                            .map(|(p, t)| t.saturating_sub(first[i].get(p).copied().unwrap_or(0)))
                            .sum();
                        (*pid, peak[i], ticks as f64 / CLOCK_TICKS)
                    })
                    .collect(),
                machine_busy,
            }
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> Resources {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
