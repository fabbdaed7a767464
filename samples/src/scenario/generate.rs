//! The generator's entry point: plan a scenario, derive its truth, then write one EVTX file per
//! host and channel in parallel, with noise merged in time order, plus truth.json and
//! counts.json.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::emit::Emit;
use super::fleet::Host;
use super::noise::{NoiseStream, channel_weights};
use super::plan::{Ctx, SCENARIOS, build};
use super::rng::Rng;
use super::truth::{Finding, analyze};
use crate::SamplesError;
use crate::catalog::Catalog;
use crate::writer::{Event, EvtxWriter, FileTime, WriteStats};

/// 2026-03-02T00:00:00Z, the default start.
pub const DEFAULT_START: i64 = 1_772_409_600;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// A scenario name from [`scenario_names`], or `all` (each into `out/<scenario>/`).
    pub scenario: String,
    /// Workstations in the fleet (servers of a scenario come on top).
    pub hosts: usize,
    /// Days covered.
    pub days: u32,
    /// Total events per scenario, noise included (at least the scenario's own events).
    pub events: u64,
    /// The seed; the same options give byte-identical output.
    pub seed: u64,
    /// The output directory.
    pub out: PathBuf,
    /// The start, Unix seconds (UTC); default 2026-03-02T00:00:00Z.
    pub start: Option<i64>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            scenario: "all".to_string(),
            hosts: 8,
            days: 2,
            events: 2000,
            seed: 1,
            out: PathBuf::from("samples-out"),
            start: None,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenerateSummary {
    /// EVTX files written.
    pub files: usize,
    /// Records written.
    pub records: u64,
    /// Bytes of EVTX written.
    pub bytes: u64,
    /// The scenarios generated.
    pub scenarios: Vec<String>,
}

/// The scenario names.
pub fn scenario_names() -> &'static [&'static str] {
    &SCENARIOS
}

/// The file name of a channel: `/` becomes `%4`, as Windows names its log files.
pub fn channel_file_name(channel: &str) -> String {
    format!("{}.evtx", channel.replace('/', "%4"))
}

/// Generate the scenario(s) of `opts`; `progress` is called from this thread with the bytes
/// written so far.
pub fn generate(
    opts: &GenerateOptions,
    progress: &dyn Fn(u64),
) -> Result<GenerateSummary, SamplesError> {
    if opts.hosts == 0 || opts.hosts > 9999 {
        return Err(SamplesError::InvalidOption {
            option: "hosts",
            problem: format!("{} is not in 1..=9999", opts.hosts),
        });
    }
    if opts.days == 0 || opts.days > 3650 {
        return Err(SamplesError::InvalidOption {
            option: "days",
            problem: format!("{} is not in 1..=3650", opts.days),
        });
    }
    let names: Vec<&str> = if opts.scenario == "all" {
        SCENARIOS.to_vec()
    } else if let Some(name) = SCENARIOS.iter().find(|n| **n == opts.scenario) {
        vec![name]
    } else {
        return Err(SamplesError::UnknownScenario {
            name: opts.scenario.clone(),
            known: SCENARIOS.join(", "),
        });
    };
    let catalog = Catalog::new();
    let mut summary = GenerateSummary::default();
    let mut done_bytes = 0;
    for name in names {
        let dir = if opts.scenario == "all" {
            opts.out.join(name)
        } else {
            opts.out.clone()
        };
        let s = generate_one(&catalog, name, opts, &dir, &|b| progress(done_bytes + b))?;
        done_bytes += s.bytes;
        summary.files += s.files;
        summary.records += s.records;
        summary.bytes += s.bytes;
        summary.scenarios.push(name.to_string());
    }
    Ok(summary)
}

/// One file to write.
struct Job<'a> {
    host: &'a Host,
    channel: String,
    signal: Vec<Event>,
    noise: u64,
    path: PathBuf,
}

#[derive(Serialize)]
struct TruthFile<'a> {
    scenario: &'a str,
    seed: u64,
    hosts: usize,
    days: u32,
    events: u64,
    start: String,
    end: String,
    findings: &'a [Finding],
}

#[derive(Serialize)]
struct CountRow {
    channel: String,
    event_id: u16,
    computer: String,
    count: u64,
}

#[derive(Serialize)]
struct FileRow {
    path: String,
    records: u64,
    first_record_id: u64,
}

#[derive(Serialize)]
struct CountsFile<'a> {
    scenario: &'a str,
    records: u64,
    files: Vec<FileRow>,
    counts: Vec<CountRow>,
}

/// The plan, truth and events of a scenario, without writing anything (used by tests).
pub fn plan_scenario(
    catalog: &Catalog,
    name: &str,
    opts: &GenerateOptions,
) -> Option<(Vec<Host>, Vec<Event>, Vec<Finding>)> {
    let mut ctx = Ctx {
        emit: Emit { cat: catalog },
        rng: Rng::derive(opts.seed, &[name, "plan"]),
        start: opts.start.unwrap_or(DEFAULT_START),
        days: opts.days.max(1),
        hosts: opts.hosts.max(1),
    };
    let plan = build(name, &mut ctx)?;
    let truth = analyze(&plan.signal);
    Some((plan.hosts, plan.signal, truth))
}

/// Split `total` by `weights`, largest remainders first (ties by position).
fn split(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u64 = weights.iter().sum::<u64>().max(1);
    let mut parts: Vec<u64> = weights.iter().map(|w| total * w / sum).collect();
    let mut rest = total - parts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| {
        std::cmp::Reverse((u128::from(total) * u128::from(weights[i])) % u128::from(sum))
    });
    for i in order {
        if rest == 0 {
            break;
        }
        parts[i] += 1;
        rest -= 1;
    }
    parts
}

/// The noise stream and the sorted signal of one file, merged in time order.
#[allow(clippy::too_many_arguments)]
pub fn file_events<'a>(
    catalog: &'a Catalog,
    scenario: &str,
    opts: &GenerateOptions,
    host: &'a Host,
    channel: &'static str,
    signal: Vec<Event>,
    noise: u64,
    fleet: usize,
) -> impl Iterator<Item = Event> + 'a {
    let start = FileTime::from_unix_secs(opts.start.unwrap_or(DEFAULT_START));
    let span = u64::from(opts.days.max(1)) * 86_400 * 10_000_000;
    let rng = Rng::derive(opts.seed, &[scenario, &host.name, channel, "noise"]);
    let mut noise = NoiseStream::new(
        Emit { cat: catalog },
        host,
        channel,
        rng,
        start,
        span,
        noise,
        fleet,
    )
    .peekable();
    let mut signal = signal.into_iter().peekable();
    std::iter::from_fn(move || match (signal.peek(), noise.peek()) {
        (Some(s), Some(n)) if n.time < s.time => noise.next(),
        (Some(_), _) => signal.next(),
        (None, _) => noise.next(),
    })
}

fn static_channel(channel: &str) -> &'static str {
    use crate::catalog::channel as c;
    [
        c::SECURITY,
        c::SYSTEM,
        c::SMB_CLIENT_SECURITY,
        c::SMB_CLIENT_CONNECTIVITY,
        c::SMB_SERVER_SECURITY,
        c::SMB_SERVER_AUDIT,
        c::SYSMON,
        c::POWERSHELL,
    ]
    .into_iter()
    .find(|k| *k == channel)
    .unwrap_or(c::SYSTEM)
}

/// The files of a scenario before writing: host, channel, sorted signal, noise count.
pub struct FilePlan {
    /// Index into the hosts.
    pub host: usize,
    /// The channel.
    pub channel: String,
    /// The signal events of this file, in time order.
    pub signal: Vec<Event>,
    /// How many noise events to merge in.
    pub noise: u64,
}

/// Hosts, truth and per-file plans of a scenario (`None` for an unknown name).
pub fn plan_files(
    catalog: &Catalog,
    name: &str,
    opts: &GenerateOptions,
) -> Option<(Vec<Host>, Vec<Finding>, Vec<FilePlan>)> {
    let (hosts, signal, findings) = plan_scenario(catalog, name, opts)?;
    // Signal per (host, channel), in time order.
    let index: BTreeMap<&str, usize> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (&*h.computer, i))
        .collect();
    let mut per_file: BTreeMap<(usize, String), Vec<Event>> = BTreeMap::new();
    let signal_count = signal.len() as u64;
    for e in signal {
        let Some(&h) = index.get(&*e.computer) else {
            continue;
        };
        per_file
            .entry((h, e.schema.channel.to_string()))
            .or_default()
            .push(e);
    }
    for v in per_file.values_mut() {
        v.sort_by_key(|e| e.time);
    }
    // Noise per host, then per channel.
    let noise_total = opts.events.saturating_sub(signal_count);
    let per_host = split(noise_total, &vec![1; hosts.len()]);
    let mut noise: BTreeMap<(usize, String), u64> = BTreeMap::new();
    for (h, host) in hosts.iter().enumerate() {
        let weights = channel_weights(host);
        let counts = split(
            per_host[h],
            &weights.iter().map(|w| w.1).collect::<Vec<_>>(),
        );
        for ((ch, _), n) in weights.iter().zip(counts) {
            if n > 0 {
                noise.insert((h, ch.to_string()), n);
            }
        }
    }
    let mut keys: Vec<(usize, String)> = per_file.keys().chain(noise.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let files = keys
        .into_iter()
        .map(|key| FilePlan {
            host: key.0,
            noise: noise.get(&key).copied().unwrap_or(0),
            signal: per_file.remove(&key).unwrap_or_default(),
            channel: key.1,
        })
        .collect();
    Some((hosts, findings, files))
}

/// Every event of a scenario, noise included, file by file (for tests and small sets).
pub fn scenario_events(
    catalog: &Catalog,
    name: &str,
    opts: &GenerateOptions,
) -> Option<(Vec<Finding>, Vec<Vec<Event>>)> {
    let (hosts, findings, files) = plan_files(catalog, name, opts)?;
    let events = files
        .into_iter()
        .map(|f| {
            let channel = static_channel(&f.channel);
            file_events(
                catalog,
                name,
                opts,
                &hosts[f.host],
                channel,
                f.signal,
                f.noise,
                hosts.len(),
            )
            .collect()
        })
        .collect();
    Some((findings, events))
}

fn generate_one(
    catalog: &Catalog,
    name: &str,
    opts: &GenerateOptions,
    dir: &Path,
    progress: &dyn Fn(u64),
) -> Result<GenerateSummary, SamplesError> {
    let Some((hosts, findings, files)) = plan_files(catalog, name, opts) else {
        return Err(SamplesError::UnknownScenario {
            name: name.to_string(),
            known: SCENARIOS.join(", "),
        });
    };
    let jobs: Vec<Job<'_>> = files
        .into_iter()
        .map(|f| {
            let host = &hosts[f.host];
            let path = dir.join(&host.name).join(channel_file_name(&f.channel));
            Job {
                host,
                channel: f.channel,
                signal: f.signal,
                noise: f.noise,
                path,
            }
        })
        .collect();
    for h in &hosts {
        let d = dir.join(&h.name);
        std::fs::create_dir_all(&d).map_err(|e| SamplesError::io("create directory", &d, e))?;
    }

    let results = run_jobs(catalog, name, opts, jobs, hosts.len(), progress)?;

    let mut summary = GenerateSummary {
        scenarios: vec![name.to_string()],
        ..Default::default()
    };
    let mut counts: BTreeMap<(String, u16, String), u64> = BTreeMap::new();
    let mut files = Vec::new();
    for (path, stats, per_id) in results {
        summary.files += 1;
        summary.records += stats.records;
        summary.bytes += stats.bytes;
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        files.push(FileRow {
            path: rel,
            records: stats.records,
            first_record_id: stats.first_record_id,
        });
        for (key, n) in per_id {
            *counts.entry(key).or_default() += n;
        }
    }
    let start = FileTime::from_unix_secs(opts.start.unwrap_or(DEFAULT_START));
    let end = FileTime(start.0 + u64::from(opts.days.max(1)) * 86_400 * 10_000_000);
    let truth = TruthFile {
        scenario: name,
        seed: opts.seed,
        hosts: opts.hosts,
        days: opts.days,
        events: opts.events,
        start: start.to_rfc3339(),
        end: end.to_rfc3339(),
        findings: &findings,
    };
    write_json(&dir.join("truth.json"), &truth)?;
    let counts = CountsFile {
        scenario: name,
        records: summary.records,
        files,
        counts: counts
            .into_iter()
            .map(|((channel, event_id, computer), count)| CountRow {
                channel,
                event_id,
                computer,
                count,
            })
            .collect(),
    };
    write_json(&dir.join("counts.json"), &counts)?;
    Ok(summary)
}

type JobResult = (PathBuf, WriteStats, BTreeMap<(String, u16, String), u64>);

fn run_jobs(
    catalog: &Catalog,
    name: &str,
    opts: &GenerateOptions,
    jobs: Vec<Job<'_>>,
    fleet: usize,
    progress: &dyn Fn(u64),
) -> Result<Vec<JobResult>, SamplesError> {
    let total = jobs.len();
    let jobs: Vec<Mutex<Option<Job<'_>>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Mutex<Option<Result<JobResult, SamplesError>>>> =
        (0..total).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(total.max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    let job = jobs[i].lock().ok().and_then(|mut j| j.take());
                    let result = match job {
                        Some(job) => write_job(catalog, name, opts, job, fleet, &bytes),
                        None => Err(SamplesError::Thread(format!("job {i} taken twice"))),
                    };
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(result);
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        while finished.load(Ordering::SeqCst) < total {
            progress(bytes.load(Ordering::SeqCst));
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    progress(bytes.load(Ordering::SeqCst));
    results
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            m.into_inner()
                .map_err(|_| SamplesError::Thread(format!("job {i} poisoned")))?
                .unwrap_or_else(|| Err(SamplesError::Thread(format!("job {i} did not run"))))
        })
        .collect()
}

fn write_job(
    catalog: &Catalog,
    name: &str,
    opts: &GenerateOptions,
    job: Job<'_>,
    fleet: usize,
    bytes: &AtomicU64,
) -> Result<JobResult, SamplesError> {
    let channel = static_channel(&job.channel);
    let mut rng = Rng::derive(opts.seed, &[name, &job.host.name, channel, "ids"]);
    let first_id = rng.range(1, 40_000);
    let mut w = EvtxWriter::create(&job.path, first_id)?;
    let mut per_id: BTreeMap<(String, u16, String), u64> = BTreeMap::new();
    let mut reported = 0u64;
    let mut last_id: Option<(u16, u64)> = None;
    for (i, e) in file_events(
        catalog, name, opts, job.host, channel, job.signal, job.noise, fleet,
    )
    .enumerate()
    {
        w.write(&e)?;
        let id = e.schema.event_id;
        match &mut last_id {
            Some((last, n)) if *last == id => *n += 1,
            _ => {
                if let Some((last, n)) = last_id.take() {
                    *per_id
                        .entry((job.channel.clone(), last, job.host.computer.to_string()))
                        .or_default() += n;
                }
                last_id = Some((id, 1));
            }
        }
        if i % 4096 == 4095 {
            let now = w.bytes_written();
            bytes.fetch_add(now - reported, Ordering::Relaxed);
            reported = now;
        }
    }
    if let Some((last, n)) = last_id {
        *per_id
            .entry((job.channel.clone(), last, job.host.computer.to_string()))
            .or_default() += n;
    }
    let (stats, _) = w.finish()?;
    bytes.fetch_add(stats.bytes - reported, Ordering::Relaxed);
    Ok((job.path, stats, per_id))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), SamplesError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| SamplesError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push(b'\n');
    std::fs::write(path, text).map_err(|e| SamplesError::io("write", path, e))
}
