//! Runs one module or component through the engine in a loop, without Caddy, and prints
//! the time per request: for profiling the engine alone (`perf record` this), not a
//! benchmark of the server (that is `bench/run`).
//!
//!   cargo run --release -p wagi-core --example engine_loop -- <file.wasm> [requests]
//!
//! `THREADS=n` runs the loop on n threads at once; `SPIN=1` adds a thread of the process
//! that only spins, as Caddy's own threads occupy the other cores. Each run is a `GET
//! /hello` without a body, answered to a host that drops the response.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wagi_core::{ClientGone, Engine, EngineConfig, Host, LogLevel, ResponseHead, RunSpec};

struct Discard;

impl Host for Discard {
    fn read_body(&self, _: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
    fn send_head(&self, _: &ResponseHead, _: &[u8], _: bool) -> Result<(), ClientGone> {
        Ok(())
    }
    fn write_body(&self, _: &[u8], _: bool) -> Result<(), ClientGone> {
        Ok(())
    }
    fn log(&self, level: LogLevel, message: &str) {
        eprintln!("{level:?}: {message}");
    }
    fn cancelled(&self) -> bool {
        false
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: engine_loop <file.wasm> [requests]")?;
    let requests: u32 = args
        .next()
        .map_or(Ok(20_000), |n| n.parse())
        .map_err(|e| format!("{e}"))?;
    let threads = env_number("THREADS", 1);

    let engine = Engine::new(EngineConfig::default(), None).map_err(|f| f.message)?;
    let site = engine.site(b"engine_loop", RunSpec::default);
    let mut spec = RunSpec {
        module_path: path.into(),
        ..RunSpec::default()
    };
    spec.http.method = "GET".into();
    spec.http.request_uri = "/hello".into();
    spec.http.host = "127.0.0.1".into();
    spec.http.protocol = "HTTP/1.1".into();
    spec.http.content_length = Some(0);
    let host: Arc<dyn Host> = Arc::new(Discard);
    // Each run gets its own copy of the spec, as the FFI copies the site's base per request.
    let run = || {
        engine
            .handle(&site, spec.clone(), host.clone())
            .map_err(|f| f.message)
    };

    // Warm up, and give the optimised tier time to replace the baseline one.
    run()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine
        .list()
        .0
        .iter()
        .any(|m| m.tier != wagi_core::Tier::Optimized)
        && Instant::now() < deadline
    {
        run()?;
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..200 {
        run()?;
    }

    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        if std::env::var_os("SPIN").is_some() {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| (0..requests).try_for_each(|_| run().map(drop))))
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        stop.store(true, Ordering::Relaxed);
        results
            .into_iter()
            .try_for_each(|r| r.map_err(|_| "a worker panicked".to_string())?)
    })?;
    let per_request = started.elapsed() / requests;
    println!(
        "{:.1} us per request on each of {threads} thread(s)",
        per_request.as_secs_f64() * 1e6
    );
    Ok(())
}
