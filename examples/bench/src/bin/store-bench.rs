//! `store-bench URL...`: each store's load/update/create per second next to the raw client
//! sending the same commands (see `bench::store_bench`). Prints a markdown table.
//!
//! `ROUNDS` (default 5) alternating runs of `SECONDS` (default 2) per operation and side;
//! medians. `cargo xtask bench` runs it with the URLs of the services it starts.

use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use bench::store_bench::{measure, prepare, Operation, Raw, Side};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn setting(name: &str, default: u64) -> Result<u64, String> {
    std::env::var(name).map_or(Ok(default), |v| {
        v.parse().map_err(|_| format!("{name} must be a number"))
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

async fn run() -> Result<(), String> {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        return Err("usage: store-bench URL... (memory://, file://DIR, redis://, memcache://, mongodb://, postgres://, mysql://, sqlite://)".to_owned());
    }
    let rounds = setting("ROUNDS", 5)?;
    let duration = Duration::from_secs(setting("SECONDS", 2)?);
    let scratch = std::env::temp_dir().join(format!("store-bench-{}", std::process::id()));
    let mut table = String::from(
        "| store | operation | raw client ops/s | store ops/s | ratio |\n|---|---|---|---|---|\n",
    );
    for url in &urls {
        let label = url
            .split_once("://")
            .map_or(url.as_str(), |(scheme, _)| scheme);
        let dir = scratch.join(label);
        let (raw, ours) = Raw::open(url, &dir).await?;
        let sides: [Rc<dyn Side>; 2] = [Rc::new(raw), Rc::new(ours)];
        let keys = [
            Rc::new(prepare(sides[0].as_ref()).await?),
            Rc::new(prepare(sides[1].as_ref()).await?),
        ];
        for operation in Operation::ALL {
            let mut results = [Vec::new(), Vec::new()];
            for round in 0..rounds {
                // Alternate which side goes first, so drift hits both alike.
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    let rate = measure(
                        Rc::clone(&sides[side]),
                        operation,
                        Rc::clone(&keys[side]),
                        duration,
                    )
                    .await
                    .map_err(|e| format!("{label} {}: {e}", operation.name()))?;
                    results[side].push(rate);
                }
            }
            let [raw, ours] = results.map(median);
            let line = format!(
                "| {label} | {} | {raw:.0} | {ours:.0} | {:.2} |\n",
                operation.name(),
                ours / raw
            );
            eprint!("{line}");
            table.push_str(&line);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    print!("{table}");
    Ok(())
}
