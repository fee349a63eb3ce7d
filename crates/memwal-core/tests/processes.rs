//! Real processes: writers SIGKILLed at random moments, two or three
//! processes racing to own one shard, and a disk that fills up. The binary
//! re-executes itself as the child processes (first argument `child-…`), so
//! it runs without libtest (`harness = false` in Cargo.toml).
//!
//! `MEMWAL_KILL_ITERATIONS` and `MEMWAL_RACE_ROUNDS` raise the counts for a
//! longer, nightly-style run (`scripts/reliability-nightly.sh`).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use memwal_core::{ErrorCode, OpenOptions, ShardWriter, ShardWriterConfig, StorageRoot, WalTailer};
use rand::Rng;

/// Rows per put; ids of child `c` start at `c * ID_SPACE`.
const ROWS: i64 = 10;
const ID_SPACE: i64 = 1_000_000_000;
const IN_FLIGHT: usize = 4;

/// A named parent-side test.
type Scenario = fn(&tokio::runtime::Runtime);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("child-writer") => runtime.block_on(child_writer(&args[2], &args[3], &args[4])),
        Some("child-racer") => {
            runtime.block_on(child_racer(&args[2], &args[3], &args[4], &args[5]))
        }
        Some("child-disk-full") => runtime.block_on(child_disk_full(&args[2])),
        _ => {
            // Parent: run every scenario whose name contains a filter
            // argument (all of them without one), libtest style.
            let filters: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
            let scenarios: [(&str, Scenario); 3] = [
                (
                    "sigkill_at_random_moments_loses_no_acknowledged_row",
                    |rt| rt.block_on(sigkill_at_random_moments()),
                ),
                ("racing_processes_never_both_acknowledge", |rt| {
                    rt.block_on(racing_processes())
                }),
                ("a_full_disk_is_io_and_loses_nothing_acknowledged", |rt| {
                    rt.block_on(disk_full())
                }),
            ];
            for (name, run) in scenarios {
                if filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())) {
                    let started = Instant::now();
                    println!("test {name} ...");
                    run(&runtime);
                    println!(
                        "test {name} ... ok ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a count"))
        })
        .unwrap_or(default)
}

fn file_root(dir: &std::path::Path) -> StorageRoot {
    StorageRoot::open(&format!("file://{}", dir.display())).unwrap()
}

fn options(shard: uuid::Uuid, config: ShardWriterConfig) -> OpenOptions {
    OpenOptions {
        shard_id: Some(shard),
        schema: schema(),
        config,
    }
}

/// MemTable mode with small MemTables, so Parquet flushes and manifest
/// commits happen all the time.
fn busy_config() -> ShardWriterConfig {
    ShardWriterConfig {
        max_memtable_batches: 8,
        wal_persist_retry_base_delay: Duration::from_millis(1),
        ..memtable()
    }
}

/// Print one line and push it out at once: the parent may kill us next.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// A child that spawns `exe` with `args`, collecting its stdout lines.
struct Child {
    process: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Child {
    fn spawn(mut command: Command) -> Child {
        let mut process = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child process");
        let stdout = process.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => sink.lock().unwrap().push(line),
                    Err(_) => break,
                }
            }
        });
        Child {
            process,
            lines,
            reader: Some(reader),
        }
    }

    fn kill(&mut self) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
    }

    /// Wait for exit and return every complete line it printed.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.process.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let lines = self.lines.lock().unwrap().clone();
        (status, lines)
    }
}

fn self_command(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(args);
    command
}

// ---------------------------------------------------------------------------
// SIGKILL at random moments

/// Durable puts of ids `start, start+ROWS, …` with `IN_FLIGHT` at a time,
/// printing `ack <first id>` for each, until killed.
async fn child_writer(dir: &str, shard: &str, start: &str) {
    let root = file_root(std::path::Path::new(dir));
    let shard: uuid::Uuid = shard.parse().unwrap();
    let start: i64 = start.parse().unwrap();
    let writer = Arc::new(
        ShardWriter::open(root, options(shard, busy_config()))
            .await
            .unwrap(),
    );
    say("open");
    let mut in_flight = futures::stream::FuturesOrdered::new();
    let mut next = start;
    loop {
        while in_flight.len() < IN_FLIGHT {
            let (w, first) = (writer.clone(), next);
            in_flight.push_back(async move {
                w.put(vec![batch(first, ROWS as usize)]).await.unwrap();
                first
            });
            next += ROWS;
        }
        let first = futures::StreamExt::next(&mut in_flight).await.unwrap();
        say(&format!("ack {first}"));
    }
}

async fn sigkill_at_random_moments() {
    let iterations = env_count("MEMWAL_KILL_ITERATIONS", 50);
    let dir = tempfile::tempdir().unwrap();
    let root = file_root(dir.path());
    let shard = uuid::Uuid::new_v4();
    let mut rng = rand::rng();
    // Per child: the id it starts at and the ids it acknowledged.
    let mut acked_by: Vec<(i64, Vec<i64>)> = Vec::new();
    let mut kills_after_open = 0;
    for i in 0..iterations {
        let start = i as i64 * ID_SPACE;
        let mut child = Child::spawn(self_command(&[
            "child-writer",
            &dir.path().display().to_string(),
            &shard.to_string(),
            &start.to_string(),
        ]));
        // Anywhere from during open and replay to deep into the puts.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
        child.kill();
        let (_, lines) = child.finish();
        kills_after_open += lines.iter().any(|l| l == "open") as usize;
        let acked: Vec<i64> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ack "))
            .flat_map(|first| {
                let first: i64 = first.parse().unwrap();
                first..first + ROWS
            })
            .collect();
        acked_by.push((start, acked));
        check_killed_writers(&root, shard, &acked_by).await;
    }
    // A last writer replays whatever the last kill left and closes cleanly.
    let writer = ShardWriter::open(root.clone(), options(shard, busy_config()))
        .await
        .unwrap();
    writer.close().await.unwrap();
    let rows = check_killed_writers(&root, shard, &acked_by).await;
    let acked: usize = acked_by.iter().map(|(_, a)| a.len()).sum();
    println!(
        "  {iterations} SIGKILLs ({kills_after_open} after open), {acked} acknowledged rows, \
         {rows} rows checked after the last one, none lost"
    );
    assert!(
        kills_after_open > iterations / 2,
        "most kills should land mid-write"
    );
}

/// Every acknowledged row once, nothing else twice, and each child's rows
/// a prefix of what it sent (puts enter the WAL in order).
async fn check_killed_writers(
    root: &StorageRoot,
    shard: uuid::Uuid,
    acked_by: &[(i64, Vec<i64>)],
) -> usize {
    let present = reader_ids(root, shard).await;
    let mut by_child: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for id in &present {
        by_child.entry(id / ID_SPACE).or_default().push(*id);
    }
    let mut attempted = HashSet::new();
    let mut acked = Vec::new();
    for (start, child_acked) in acked_by {
        let mut mine = by_child.remove(&(start / ID_SPACE)).unwrap_or_default();
        mine.sort();
        let expected: Vec<i64> = (*start..*start + mine.len() as i64).collect();
        assert_eq!(
            mine, expected,
            "rows of the child starting at {start} are a prefix"
        );
        assert!(
            mine.len() >= child_acked.len(),
            "child {start} lost acknowledged rows"
        );
        attempted.extend(mine);
        acked.extend(child_acked);
    }
    assert!(
        by_child.is_empty(),
        "rows from no known child: {by_child:?}"
    );
    assert_kept(&present, &acked, &attempted);
    present.len()
}

// ---------------------------------------------------------------------------
// Racing processes

/// Open the shard `opens` times, each time writing durable puts (with
/// random stalls, so a writer often wakes up already fenced) until fenced.
async fn child_racer(dir: &str, shard: &str, tag: &str, opens: &str) {
    let root = file_root(std::path::Path::new(dir));
    let shard: uuid::Uuid = shard.parse().unwrap();
    let tag: i64 = tag.parse().unwrap();
    let opens: usize = opens.parse().unwrap();
    let mut rng = rand::rng();
    let mut next = tag * ID_SPACE;
    for _ in 0..opens {
        let writer = match ShardWriter::open(root.clone(), options(shard, busy_config())).await {
            Ok(w) => w,
            Err(err) => {
                say(&format!("open-error {}", err.code()));
                continue;
            }
        };
        let epoch = writer.epoch();
        say(&format!("open {epoch}"));
        for _ in 0..40 {
            if rng.random_bool(0.2) {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
            }
            say(&format!("try {epoch} {next}"));
            match writer.put(vec![batch(next, ROWS as usize)]).await {
                Ok(_) => say(&format!("ack {epoch} {next}")),
                Err(err) => {
                    say(&format!("error {epoch} {}", err.code()));
                    next += ROWS;
                    break;
                }
            }
            next += ROWS;
        }
        // Leave without closing half of the time, like a crash.
        if rng.random_bool(0.5) {
            let _ = writer.close().await;
        }
    }
    say("done");
}

async fn racing_processes() {
    let rounds = env_count("MEMWAL_RACE_ROUNDS", 3);
    let mut total_epochs = 0;
    let mut total_acked = 0;
    let mut total_fenced = 0;
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let root = file_root(dir.path());
        let shard = uuid::Uuid::new_v4();
        let racers = 2 + round % 2;
        let children: Vec<Child> = (0..racers)
            .map(|tag| {
                Child::spawn(self_command(&[
                    "child-racer",
                    &dir.path().display().to_string(),
                    &shard.to_string(),
                    &(tag + 1).to_string(),
                    "12",
                ]))
            })
            .collect();
        let mut acks: Vec<(u64, i64)> = Vec::new();
        let mut errors: BTreeMap<String, usize> = BTreeMap::new();
        for child in children {
            let (status, lines) = child.finish();
            assert!(status.success(), "racer failed: {status}");
            assert_eq!(lines.last().map(String::as_str), Some("done"));
            for line in lines {
                let parts: Vec<&str> = line.split(' ').collect();
                match parts[0] {
                    "ack" => acks.push((parts[1].parse().unwrap(), parts[2].parse().unwrap())),
                    "error" => *errors.entry(parts[2].to_string()).or_default() += 1,
                    "open-error" => *errors.entry(format!("open {}", parts[1])).or_default() += 1,
                    _ => {}
                }
            }
        }
        // Writers that lose a race are fenced; nothing else may go wrong.
        // (An open can be fenced too: a rival claims between our claim and
        // our fence sentinel.)
        for kind in errors.keys() {
            assert!(
                kind.trim_start_matches("open ") == ErrorCode::Fenced.as_str(),
                "unexpected errors: {errors:?}"
            );
        }
        let (epochs, rows) = check_race(&root, shard, &acks).await;
        total_epochs += epochs;
        total_acked += acks.len();
        total_fenced += errors.values().sum::<usize>();
        println!("  round {round}: {racers} processes, {epochs} epochs, {} acknowledged puts, {rows} rows, {errors:?}", acks.len());
    }
    println!(
        "  {rounds} rounds: {total_epochs} epochs (takeovers), {total_acked} acknowledged puts, \
         {total_fenced} fenced puts, none lost"
    );
}

/// From the WAL: epochs never go down from one position to the next (so
/// no fenced writer appended after its successor's sentinel) and every
/// acknowledged put sits in an entry of the epoch that acknowledged it.
/// From a reader: every acknowledged row exactly once.
async fn check_race(root: &StorageRoot, shard: uuid::Uuid, acks: &[(u64, i64)]) -> (usize, usize) {
    // A final writer replays and flushes what the racers left behind.
    let last = ShardWriter::open(root.clone(), options(shard, busy_config()))
        .await
        .unwrap();
    last.close().await.unwrap();

    let tailer = WalTailer::new(root.clone(), shard);
    let mut position = tailer.first_position().await.unwrap();
    let mut epoch_of_row: HashMap<i64, u64> = HashMap::new();
    let mut previous_epoch = 0;
    let mut epochs = HashSet::new();
    let mut shape = Vec::new();
    while let Some(entry) = tailer.read_entry(position).await.unwrap() {
        let first = ids(&entry.batches).first().copied();
        shape.push(format!(
            "{position}:e{}{}{}",
            entry.epoch,
            if entry.fence_sentinel {
                ":sentinel"
            } else {
                ""
            },
            first.map(|id| format!(":id{id}")).unwrap_or_default()
        ));
        assert!(
            entry.epoch >= previous_epoch,
            "epoch {} at position {position} after epoch {previous_epoch}; WAL: {}",
            entry.epoch,
            shape[shape.len().saturating_sub(12)..].join(" ")
        );
        previous_epoch = entry.epoch;
        epochs.insert(entry.epoch);
        for id in ids(&entry.batches) {
            assert!(
                epoch_of_row.insert(id, entry.epoch).is_none(),
                "id {id} twice in the WAL"
            );
        }
        position += 1;
    }
    for (epoch, first) in acks {
        assert_eq!(
            epoch_of_row.get(first),
            Some(epoch),
            "put {first} acknowledged at epoch {epoch}"
        );
    }
    let acked: Vec<i64> = acks.iter().flat_map(|(_, f)| *f..*f + ROWS).collect();
    let attempted: HashSet<i64> = epoch_of_row.keys().copied().collect();
    let present = reader_ids(root, shard).await;
    assert_kept(&present, &acked, &attempted);
    (epochs.len(), present.len())
}

// ---------------------------------------------------------------------------
// Disk full

/// Inside a private mount namespace: a 4 MiB tmpfs at `dir`.
async fn child_disk_full(dir: &str) {
    let dir = std::path::Path::new(dir);
    let ballast = dir.join("ballast");
    std::fs::write(&ballast, vec![7u8; 512 * 1024]).unwrap();
    let root = file_root(&dir.join("db"));
    let shard = uuid::Uuid::new_v4();
    let writer = ShardWriter::open(root.clone(), options(shard, busy_config()))
        .await
        .unwrap();
    let mut acked = Vec::new();
    let mut attempted = HashSet::new();
    let mut next = 0i64;
    let error = loop {
        attempted.extend(next..next + 100);
        match writer.put(vec![batch(next, 100)]).await {
            Ok(_) => acked.extend(next..next + 100),
            Err(err) => break err,
        }
        next += 100;
        assert!(next < 10_000_000, "the disk never filled up");
    };
    assert_eq!(error.code(), ErrorCode::Io, "{error}");
    assert!(
        error.message().contains("No space left") || error.message().contains("os error 28"),
        "the error names the cause: {error}"
    );
    say(&format!(
        "full after {} acknowledged rows: {error}",
        acked.len()
    ));
    // A full disk still reads: everything acknowledged is there.
    assert_kept(&reader_ids(&root, shard).await, &acked, &attempted);
    drop(writer);

    // Free some space: a new writer takes over and replays.
    std::fs::remove_file(&ballast).unwrap();
    let writer = ShardWriter::open(root.clone(), options(shard, busy_config()))
        .await
        .unwrap();
    attempted.extend(next..next + 10);
    writer.put(vec![batch(next, 10)]).await.unwrap();
    acked.extend(next..next + 10);
    writer.close().await.unwrap();
    assert_kept(&reader_ids(&root, shard).await, &acked, &attempted);
    say(&format!("recovered {} rows", acked.len()));
}

async fn disk_full() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // A private mount namespace (as root, or as a mapped root user) keeps
    // the tmpfs invisible to everything else and gone when the child exits.
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--map-root-user", "sh", "-c"])
        .arg("mount -t tmpfs -o size=4m memwal-full \"$2\" && exec \"$1\" child-disk-full \"$2\"");
    command.arg("sh").arg(&exe).arg(dir.path());
    let (status, lines) = Child::spawn(command).finish();
    for line in &lines {
        println!("  {line}");
    }
    assert!(status.success(), "disk-full child failed: {status}");
    assert!(lines.iter().any(|l| l.starts_with("recovered")));
}
