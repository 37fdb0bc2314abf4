//! Runs small WAT guests through the engine with an in-memory host.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wagi_core::{
    ClientGone, Engine, EngineConfig, FailureKind, FileIdentity, Host, LogLevel, Mount,
    ResponseHead, RunSpec,
};

#[derive(Default)]
struct Recorded {
    head: Option<ResponseHead>,
    body: Vec<u8>,
    logs: Vec<(LogLevel, String)>,
}

struct MemoryHost {
    input: Mutex<std::io::Cursor<Vec<u8>>>,
    out: Mutex<Recorded>,
}

impl MemoryHost {
    fn new(input: &[u8]) -> Arc<Self> {
        Arc::new(MemoryHost {
            input: Mutex::new(std::io::Cursor::new(input.to_vec())),
            out: Mutex::new(Recorded::default()),
        })
    }
}

impl Host for MemoryHost {
    fn read_body(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut *self.input.lock().unwrap(), buf)
    }
    fn send_head(&self, head: &ResponseHead, body: &[u8], _flush: bool) -> Result<(), ClientGone> {
        let mut out = self.out.lock().unwrap();
        out.head = Some(head.clone());
        out.body.extend_from_slice(body);
        Ok(())
    }
    fn write_body(&self, data: &[u8], _flush: bool) -> Result<(), ClientGone> {
        self.out.lock().unwrap().body.extend_from_slice(data);
        Ok(())
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.out
            .lock()
            .unwrap()
            .logs
            .push((level, message.to_string()));
    }
    fn cancelled(&self) -> bool {
        false
    }
}

/// WASI imports and a data segment holding `text` at offset 64, with its length at 0..4
/// scratch space after it.
fn guest(text: &str, body: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{text}")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") {body}))"#,
        text = text.escape_default()
    )
}

fn write_out(text: &str) -> String {
    guest(
        text,
        &format!(
            "(call $write (i32.const 1) (i32.const 64) (i32.const {}))",
            text.len()
        ),
    )
}

struct Fixture {
    engine: Engine,
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "wagi-core-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let engine = Engine::new(
            EngineConfig {
                instance_slots: 8,
                memory_ceiling: 1 << 30,
                ..EngineConfig::default()
            },
            None,
        )
        .unwrap();
        Fixture { engine, dir }
    }

    fn module(&self, name: &str, source: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, source).unwrap();
        path
    }

    fn run(
        &self,
        path: PathBuf,
        input: &[u8],
        tweak: impl FnOnce(&mut RunSpec),
    ) -> (Result<(), wagi_core::Failure>, Arc<MemoryHost>) {
        let host = MemoryHost::new(input);
        let mut spec = RunSpec {
            module_path: path,
            ..RunSpec::default()
        };
        tweak(&mut spec);
        // Every run is a site of its own: tests set the site-level fields per run.
        let site = self.engine.site(b"run_wat", RunSpec::default);
        let result = self.engine.handle(&site, spec, host.clone());
        (result, host)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn hello_response_is_parsed_and_streamed() {
    let f = Fixture::new();
    let m = f.module(
        "hello.wasm",
        &write_out("Status: 201 Created\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\nhello"),
    );
    let (result, host) = f.run(m, b"", |_| {});
    result.unwrap();
    let out = host.out.lock().unwrap();
    let head = out.head.as_ref().unwrap();
    assert_eq!(head.status, 201);
    assert!(head.fields.contains(&(b"X-A".to_vec(), b"1".to_vec())));
    assert_eq!(out.body, b"hello");
}

#[test]
fn stdin_is_the_request_body() {
    let f = Fixture::new();
    // Writes the header, then copies stdin to stdout 16 bytes at a time until EOF.
    let header = "Content-Type: application/octet-stream\n\n";
    let body = format!(
        r#"(local $n i32)
        (call $write (i32.const 1) (i32.const 64) (i32.const {len}))
        (block $done (loop $copy
          (i32.store (i32.const 16) (i32.const 1024))
          (i32.store (i32.const 20) (i32.const 16))
          (br_if $done (i32.ne (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)) (i32.const 0)))
          (local.set $n (i32.load (i32.const 24)))
          (br_if $done (i32.eqz (local.get $n)))
          (call $write (i32.const 1) (i32.const 1024) (local.get $n))
          (br $copy)))"#,
        len = header.len()
    );
    let m = f.module("echo.wasm", &guest(header, &body));
    let input: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let (result, host) = f.run(m, &input, |_| {});
    result.unwrap();
    assert_eq!(host.out.lock().unwrap().body, input);
}

#[test]
fn stderr_is_logged_line_by_line() {
    let f = Fixture::new();
    let text = "one\ntwo\nContent-Type: a/b\n\n";
    let body = "(call $write (i32.const 2) (i32.const 64) (i32.const 8))
                (call $write (i32.const 1) (i32.const 72) (i32.const 19))";
    let m = f.module("stderr.wasm", &guest(text, body));
    let (result, host) = f.run(m, b"", |_| {});
    result.unwrap();
    let logs: Vec<String> = host
        .out
        .lock()
        .unwrap()
        .logs
        .iter()
        .filter(|(l, _)| *l == LogLevel::GuestStderr)
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(logs, vec!["one", "two"]);
}

#[test]
fn runaway_loop_times_out() {
    let f = Fixture::new();
    let m = f.module("loop.wasm", &guest("", "(loop $l (br $l))"));
    let started = Instant::now();
    let (result, _) = f.run(m, b"", |s| s.limits.timeout = Duration::from_millis(200));
    assert_eq!(result.unwrap_err().kind, FailureKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn failures_are_classified() {
    let f = Fixture::new();
    let cases: Vec<(&str, String, FailureKind)> =
        vec![
        ("trap.wasm", guest("", "unreachable"), FailureKind::Trap),
        (
            "exit.wasm",
            guest("", "(call $proc_exit (i32.const 3))"),
            FailureKind::Exit,
        ),
        (
            "garbage.wasm",
            write_out("this is not a header\n\n"),
            FailureKind::MalformedResponse,
        ),
        ("silent.wasm", guest("", ""), FailureKind::MalformedResponse),
        (
            "partial.wasm",
            write_out("Content-Type: text/pl"),
            FailureKind::MalformedResponse,
        ),
        (
            "membomb.wasm",
            guest(
                "",
                "(if (i32.lt_s (memory.grow (i32.const 4096)) (i32.const 0)) (then unreachable))",
            ),
            FailureKind::MemoryLimit,
        ),
        ("notwasm.wasm", "not wasm at all".into(), FailureKind::BadModule),
        (
            "import.wasm",
            r#"(module (import "env" "nope" (func)) (func (export "_start")))"#.into(),
            FailureKind::BadModule,
        ),
        ("nostart.wasm", "(module)".into(), FailureKind::BadModule),
    ];
    for (name, source, want) in cases {
        let m = f.module(name, &source);
        let (result, _) = f.run(m, b"", |s| s.limits.memory_bytes = 16 << 20);
        assert_eq!(result.unwrap_err().kind, want, "{name}");
    }
    let (missing, _) = f.run(f.dir.join("missing.wasm"), b"", |_| {});
    assert_eq!(missing.unwrap_err().kind, FailureKind::NotFound);
}

#[test]
fn replaced_file_is_recompiled() {
    let f = Fixture::new();
    let m = f.module("v.wasm", &write_out("Content-Type: a/b\n\nv1"));
    let (r1, h1) = f.run(m.clone(), b"", |_| {});
    r1.unwrap();
    assert_eq!(h1.out.lock().unwrap().body, b"v1");
    // A different length guarantees a different file identity even within one mtime tick.
    let m = f.module("v.wasm", &write_out("Content-Type: a/b\n\nversion2"));
    let (r2, h2) = f.run(m, b"", |_| {});
    r2.unwrap();
    assert_eq!(h2.out.lock().unwrap().body, b"version2");
}

#[test]
fn the_servers_stat_of_the_file_stands_for_the_engines() {
    // The server stats the module resolving the request and passes what it found: the
    // engine then goes by that, not by a stat of its own. Here the file never changes but
    // the identity passed does, so only the passed identity can cause the second load.
    let f = Fixture::new();
    let m = f.module("id.wasm", &write_out("Content-Type: a/b\n\nid"));
    let identity = |ino| FileIdentity {
        dev: 1,
        ino,
        size: 2,
        mtime_ns: 3,
        ctime_ns: 4,
    };
    let loads = |ino| {
        let (result, host) = f.run(m.clone(), b"", |s| s.module_identity = Some(identity(ino)));
        result.unwrap();
        assert_eq!(host.out.lock().unwrap().body, b"id");
        logs(&host)
            .iter()
            .filter(|l| l.contains("module ready"))
            .count()
    };
    assert_eq!(loads(7), 1, "first use loads");
    assert_eq!(loads(7), 0, "the same identity is the version loaded");
    assert_eq!(loads(8), 1, "another identity is another version");
}

#[test]
fn mounts_are_opened_only_for_a_guest_that_can_reach_files() {
    // A mount whose directory is gone cannot be opened. A guest that imports only calls
    // blind to directories (fd_write, fd_read, proc_exit here) never has it opened, so it
    // runs; one that imports a directory call gets its mounts, and fails on that one.
    let f = Fixture::new();
    let gone = |s: &mut RunSpec| {
        s.mounts.push(Mount {
            host_path: f.dir.join("no-such-dir"),
            guest_path: "/data".into(),
            writable: false,
        })
    };
    let blind = f.module("blind.wasm", &write_out("Content-Type: a/b\n\nblind"));
    let (result, host) = f.run(blind, b"", gone);
    result.unwrap();
    assert_eq!(host.out.lock().unwrap().body, b"blind");

    let seeing = write_out("Content-Type: a/b\n\nseeing").replacen(
        "(memory",
        r#"(import "wasi_snapshot_preview1" "fd_prestat_get" (func (param i32 i32) (result i32)))
  (memory"#,
        1,
    );
    let seeing = f.module("seeing.wasm", &seeing);
    let (result, _) = f.run(seeing, b"", gone);
    let failure = result.unwrap_err();
    assert!(failure.message.contains("cannot mount"), "{failure:?}");
}

/// A guest that calls `<list>_sizes_get` and `<list>_get` (`list` is `args` or `environ`)
/// and writes to stdout, after a header: the count and size (two little-endian u32), the
/// pointer table (4 bytes each), then the strings. The table is put at 1024 and the strings
/// at `buf`.
fn list_guest(list: &str, buf: &str) -> String {
    let body = format!(
        r#"
        (drop (call $sizes (i32.const 16) (i32.const 20)))
        (drop (call $get (i32.const 1024) (i32.const {buf})))
        (call $write (i32.const 1) (i32.const 64) (i32.const 19))
        (call $write (i32.const 1) (i32.const 16) (i32.const 8))
        (call $write (i32.const 1) (i32.const 1024) (i32.mul (i32.load (i32.const 16)) (i32.const 4)))
        (call $write (i32.const 1) (i32.const {buf}) (i32.load (i32.const 20)))"#
    );
    guest("Content-Type: a/b\n\n", &body).replacen(
        "(memory",
        &format!(
            r#"(import "wasi_snapshot_preview1" "{list}_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "{list}_get" (func $get (param i32 i32) (result i32)))
  (memory"#
        ),
        1,
    )
}

/// What a [`list_guest`] wrote: its strings, each checked against its entry in the
/// pointer table (strings at 4096).
fn listed(body: &[u8]) -> Vec<String> {
    let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap()) as usize;
    let (count, size) = (word(0), word(4));
    let strings = &body[8 + 4 * count..];
    assert_eq!(strings.len(), size, "size_get's size is the bytes written");
    let mut start = 0;
    let mut found = Vec::new();
    for i in 0..count {
        assert_eq!(
            word(8 + 4 * i),
            4096 + start,
            "pointer {i} is where string {i} starts"
        );
        let len = strings[start..].iter().position(|&b| b == 0).unwrap();
        found.push(String::from_utf8_lossy(&strings[start..start + len]).into_owned());
        start += len + 1;
    }
    assert_eq!(start, size, "the strings fill the buffer");
    found
}

#[test]
fn configured_env_reaches_the_guest() {
    let f = Fixture::new();
    let m = f.module("env.wasm", &list_guest("environ", "4096"));
    let (result, host) = f.run(m, b"", |s| s.env.push(("A".into(), "1".into())));
    result.unwrap();
    let vars = listed(&host.out.lock().unwrap().body);
    assert!(
        vars.iter().any(|v| v == "A=1"),
        "guest environment: {vars:?}"
    );
    // The CGI set is there too, and nothing of the host's own environment.
    assert!(
        vars.iter().any(|v| v == "GATEWAY_INTERFACE=CGI/1.1"),
        "{vars:?}"
    );
    assert!(std::env::var_os("PATH").is_some());
    assert!(!vars.iter().any(|v| v.starts_with("PATH=")), "{vars:?}");
}

#[test]
fn arguments_reach_the_guest_and_bad_pointers_trap() {
    let f = Fixture::new();
    let m = f.module("args.wasm", &list_guest("args", "4096"));
    let (result, host) = f.run(m.clone(), b"", |_| {});
    result.unwrap();
    // No `args` configured: argv[0] is the module's path, as go-wagi gave it.
    let args = listed(&host.out.lock().unwrap().body);
    assert_eq!(args, [m.to_string_lossy()]);
    let (result, host) = f.run(m, b"", |s| s.args = vec!["one".into(), "".into()]);
    result.unwrap();
    assert_eq!(listed(&host.out.lock().unwrap().body), ["one", ""]);

    // Strings that would run past the end of memory: the guest traps, as preview1 says a
    // call dereferencing an out-of-bounds pointer must.
    let m = f.module("oob.wasm", &list_guest("environ", "65530"));
    let (result, _) = f.run(m, b"", |_| {});
    assert_eq!(result.unwrap_err().kind, FailureKind::Trap);
}

fn logs(host: &MemoryHost) -> Vec<String> {
    host.out
        .lock()
        .unwrap()
        .logs
        .iter()
        .map(|(_, m)| m.clone())
        .collect()
}

#[test]
fn precompiled_code_is_reused_from_disk_by_a_new_engine() {
    let f = Fixture::new();
    let cache = f.dir.join("cache");
    let m = f.module("cached.wasm", &write_out("Content-Type: a/b\n\ncached"));
    let with_cache = |s: &mut RunSpec| s.cache.cache_dir = Some(cache.clone());
    let (r1, h1) = f.run(m.clone(), b"", with_cache);
    r1.unwrap();
    assert!(logs(&h1)
        .iter()
        .any(|l| l.starts_with("module ready from compiled")));

    // A second engine, as after a restart, with the same cache directory.
    let g = Fixture {
        engine: Engine::new(EngineConfig::default(), None).unwrap(),
        dir: f.dir.join("second"),
    };
    let (r2, h2) = g.run(m, b"", with_cache);
    r2.unwrap();
    assert!(
        logs(&h2)
            .iter()
            .any(|l| l.starts_with("module ready from disk cache")),
        "{:?}",
        logs(&h2)
    );
    assert_eq!(h2.out.lock().unwrap().body, b"cached");
}

#[test]
fn a_broken_new_version_keeps_the_previous_one_serving() {
    let f = Fixture::new();
    let m = f.module("flaky.wasm", &write_out("Content-Type: a/b\n\ngood"));
    let (r1, _) = f.run(m.clone(), b"", |_| {});
    r1.unwrap();
    f.module(
        "flaky.wasm",
        "(module (func (export \"_start\") half-written",
    );
    let (r2, h2) = f.run(m.clone(), b"", |_| {});
    r2.unwrap();
    assert_eq!(h2.out.lock().unwrap().body, b"good");
    assert!(logs(&h2)
        .iter()
        .any(|l| l.contains("serving the previous one")));
    // Only the request that tried the broken version logs it.
    let (r3, h3) = f.run(m, b"", |_| {});
    r3.unwrap();
    assert!(logs(&h3).is_empty(), "{:?}", logs(&h3));

    // Without an earlier good version, the failure stands.
    let fresh = f.module("fresh.wasm", "(module (func (export \"_start\") half");
    let (r4, _) = f.run(fresh, b"", |_| {});
    assert_eq!(r4.unwrap_err().kind, FailureKind::BadModule);
}

#[test]
fn idle_modules_are_dropped_after_keepalive() {
    let f = Fixture::new();
    let m = f.module("idle.wasm", &write_out("Content-Type: a/b\n\nidle"));
    let (r, _) = f.run(m, b"", |s| s.cache.keepalive = Duration::from_millis(50));
    r.unwrap();
    assert_eq!(f.engine.loaded_modules(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.engine.loaded_modules() > 0 {
        assert!(Instant::now() < deadline, "module still loaded after 10s");
        std::thread::sleep(Duration::from_millis(20)); // polling, bounded by the deadline
    }
}

/// The smallest valid component (preamble only, layer 1): it exports nothing.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

#[test]
fn a_component_that_is_not_a_wasi_http_proxy_fails_to_load_clearly() {
    let fx = Fixture::new();
    let path = fx.dir.join("empty-component.wasm");
    std::fs::write(&path, EMPTY_COMPONENT).unwrap();
    let (result, host) = fx.run(path, b"", |_| {});
    let failure = result.unwrap_err();
    assert_eq!(failure.kind, FailureKind::BadModule, "{failure}");
    assert_eq!(failure.status(), 500);
    assert!(
        failure.message.contains("not a wasi:http/proxy"),
        "{failure}"
    );
    assert!(host.out.lock().unwrap().head.is_none());
}

#[test]
fn mode_http_refuses_a_core_module() {
    let fx = Fixture::new();
    let path = fx.module("hello.wat", &write_out("Content-Type: text/plain\n\nhi"));
    let (result, _) = fx.run(path, b"", |s| s.mode = wagi_core::Mode::Http);
    let failure = result.unwrap_err();
    assert_eq!(failure.kind, FailureKind::BadModule, "{failure}");
    assert!(failure.message.contains("mode http"), "{failure}");
}

/// A wasi:http/proxy component whose handler runs `body` (core wasm, no result) and
/// sets no response.
fn handler_component(body: &str) -> Vec<u8> {
    let text = format!(
        r#"(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $req))
  (alias export $types "response-outparam" (type $out))
  (core module $m
    (func (export "handle") (param i32 i32) {body}))
  (core instance $i (instantiate $m))
  (func $handle (param "request" (own $req)) (param "response-out" (own $out))
    (canon lift (core func $i "handle")))
  (instance $h (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $h)))"#
    );
    wat::parse_str(text).unwrap()
}

#[test]
fn a_component_that_traps_fails_with_500_and_the_next_request_is_served() {
    let fx = Fixture::new();
    let path = fx.dir.join("trap.wasm");
    std::fs::write(&path, handler_component("unreachable")).unwrap();
    for _ in 0..2 {
        let (result, host) = fx.run(path.clone(), b"", |s| {
            s.http.method = "GET".into();
            s.http.host = "example.test".into();
            s.http.request_uri = "/trap.wasm".into();
        });
        let failure = result.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Trap, "{failure}");
        assert_eq!(failure.status(), 500);
        assert!(host.out.lock().unwrap().head.is_none());
    }
}

#[test]
fn a_component_that_sets_no_response_fails_with_502() {
    let fx = Fixture::new();
    let path = fx.dir.join("silent.wasm");
    std::fs::write(&path, handler_component("")).unwrap();
    let (result, _) = fx.run(path, b"", |s| {
        s.http.method = "GET".into();
        s.http.host = "example.test".into();
        s.http.request_uri = "/silent.wasm".into();
    });
    let failure = result.unwrap_err();
    assert_eq!(failure.kind, FailureKind::MalformedResponse, "{failure}");
    assert!(
        failure.message.contains("without setting a response"),
        "{failure}"
    );
}

#[test]
fn a_runaway_component_is_stopped_at_its_timeout() {
    let fx = Fixture::new();
    let path = fx.dir.join("spin.wasm");
    std::fs::write(&path, handler_component("(loop $l (br $l))")).unwrap();
    let started = Instant::now();
    let (result, _) = fx.run(path, b"", |s| {
        s.http.method = "GET".into();
        s.http.host = "example.test".into();
        s.http.request_uri = "/spin.wasm".into();
        s.limits.timeout = Duration::from_millis(300);
    });
    let failure = result.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
