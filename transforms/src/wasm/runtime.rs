//! The wasmtime side of WASM transforms: one engine for the process, compiled modules cached on disk, and a
//! guest instance per transform held to its fuel, memory cap and deadline.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use wasmtime::{Engine, InstancePre, Linker, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, Trap, TypedFunc};

/// How often the deadline clock advances while any WASM transform exists. `timeout.ms` is rounded up to it.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// Longest message read from a guest's `last_error`.
const MAX_ERROR_BYTES: usize = 4096;

/// Why a module cannot be used; at `configure`, so a connector that names it is refused at create.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("cannot read WASM module {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("WASM module {path} does not compile: {message}")]
    Compile { path: PathBuf, message: String },
    #[error(
        "WASM module {path} {problem} (ABI v1 needs `memory`, `alloc(i32) -> i32` and `transform(i32, i32) -> i64`; see docs/wasm-abi.md)"
    )]
    Exports { path: PathBuf, problem: String },
    #[error("WASM module {path} cannot be instantiated: {message}")]
    Instantiate { path: PathBuf, message: String },
    #[error("WASM module {path} refused its configuration: {message}")]
    Refused { path: PathBuf, message: String },
}

/// What went wrong running one record; the record is a data error, the task goes on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    #[error("the module ran out of fuel (fuel={0} per record): it may loop forever")]
    OutOfFuel(u64),
    #[error("the module ran past timeout.ms={0}")]
    Timeout(u64),
    #[error("the module needed more memory than memory.max.bytes={0}")]
    OutOfMemory(usize),
    #[error("the module trapped: {0}")]
    Trap(String),
    #[error("the module returned an error: {0}")]
    Returned(String),
    #[error("the module's answer is not usable: {0}")]
    Protocol(String),
    #[error("the record's JSON is {0} bytes, more than a 32-bit module can take")]
    TooLarge(usize),
    /// The instance could not be made anew after a trap (or refused its configuration then): no record can be
    /// transformed as configured, so the task fails rather than send every record to the DLQ.
    #[error("the module cannot be run: {0}")]
    Unusable(String),
}

impl Fault {
    /// A trap leaves the instance in an unknown state: it is rebuilt before the next record.
    pub(crate) fn needs_fresh_instance(&self) -> bool {
        matches!(self, Fault::OutOfFuel(_) | Fault::Timeout(_) | Fault::OutOfMemory(_) | Fault::Trap(_))
    }
}

/// Limits applied to every call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub fuel: u64,
    pub memory_max_bytes: usize,
    pub timeout_ms: u64,
}

impl Limits {
    /// Epoch ticks for the timeout: rounded up, plus one because the clock may tick right after the deadline is set.
    fn deadline_ticks(&self) -> u64 {
        self.timeout_ms.div_ceil(TICK.as_millis() as u64).max(1) + 1
    }
}

/// The process's one engine: fuel metering and epoch interruption on, so a runaway module stops.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true).epoch_interruption(true);
        // Only static settings are given, which wasmtime accepts on every platform it compiles for.
        Engine::new(&config).expect("a wasmtime engine with fuel and epoch interruption")
    })
}

/// The deadline clock: a thread that advances the engine's epoch every [`TICK`] while at least one guest
/// holds a lease, and ends when the last lease is dropped (an idle worker has no timer).
struct Clock {
    leases: usize,
    running: bool,
}
static CLOCK: Mutex<Clock> = Mutex::new(Clock { leases: 0, running: false });

pub(crate) struct ClockLease(());

impl ClockLease {
    fn take() -> std::io::Result<Self> {
        let mut clock = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
        if !clock.running {
            std::thread::Builder::new().name("wasm-deadline-clock".into()).spawn(tick_while_leased)?;
            clock.running = true;
        }
        clock.leases += 1;
        Ok(ClockLease(()))
    }
}

impl Drop for ClockLease {
    fn drop(&mut self) {
        CLOCK.lock().unwrap_or_else(|p| p.into_inner()).leases -= 1;
    }
}

fn tick_while_leased() {
    loop {
        std::thread::sleep(TICK);
        let mut clock = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
        if clock.leases == 0 {
            clock.running = false;
            return;
        }
        drop(clock);
        engine().increment_epoch();
    }
}

/// Compile a `.wasm` (or `.wat` text) file, or load the compiled code a previous start cached in `cache_dir`.
///
/// The cache file is named by the module's SHA-256 and the engine's compatibility hash (wasmtime's version and
/// settings), so a changed module or a new wasmtime compiles again; a file that does not load is replaced.
pub(crate) fn load_module(path: &Path, cache_dir: Option<&Path>) -> Result<Module, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    let engine = engine();
    let compile = || Module::new(engine, &bytes).map_err(|e| LoadError::Compile { path: path.to_path_buf(), message: format!("{e:#}") });
    let Some(dir) = cache_dir else { return compile() };
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let cached = dir.join(format!("{hex}-{:016x}.cwasm", compat.finish()));
    // Read into memory rather than mapped (`deserialize_file`): a mapped file that someone truncates in place
    // would bring the worker down with SIGBUS.
    if let Ok(code) = std::fs::read(&cached) {
        // SAFETY: the file is one this function wrote (named by the module's hash, in the cache directory the
        // operator configured), and wasmtime checks its header against this engine before using it.
        match unsafe { Module::deserialize(engine, &code) } {
            Ok(module) => return Ok(module),
            Err(e) => {
                tracing::warn!(file = %cached.display(), error = %format!("{e:#}"), "cached WASM code does not load; compiling again")
            }
        }
    }
    let module = compile()?;
    if let Err(e) = store_compiled(&module, dir, &cached) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot cache compiled WASM code; it is compiled at each start");
    }
    Ok(module)
}

fn store_compiled(module: &Module, dir: &Path, file: &Path) -> std::io::Result<()> {
    let code = module.serialize().map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    std::fs::create_dir_all(dir)?;
    // Written whole and renamed, so a concurrent start never reads half a file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = file.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, code)?;
    std::fs::rename(&tmp, file)
}

/// Refuse a module without ABI v1's exports, naming what is missing or mistyped.
fn check_exports(module: &Module, path: &Path) -> Result<(), LoadError> {
    use wasmtime::{ExternType, ValType};
    let problem = |problem: String| LoadError::Exports { path: path.to_path_buf(), problem };
    let func = |name: &str, params: &[&str], results: &[&str], required: bool| -> Result<(), LoadError> {
        match module.get_export(name) {
            None if required => Err(problem(format!("does not export `{name}`"))),
            None => Ok(()),
            Some(ExternType::Func(f)) => {
                let show = |t: ValType| match t {
                    ValType::I32 => "i32".to_string(),
                    ValType::I64 => "i64".to_string(),
                    other => format!("{other}"),
                };
                let got_params: Vec<String> = f.params().map(show).collect();
                let got_results: Vec<String> = f.results().map(show).collect();
                if got_params == params && got_results == results {
                    Ok(())
                } else {
                    Err(problem(format!(
                        "exports `{name}` as ({}) -> ({}), not ({}) -> ({})",
                        got_params.join(", "),
                        got_results.join(", "),
                        params.join(", "),
                        results.join(", ")
                    )))
                }
            }
            Some(_) => Err(problem(format!("exports `{name}`, but not as a function"))),
        }
    };
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => {}
        Some(_) => return Err(problem("exports `memory`, but not as a memory".into())),
        None => return Err(problem("does not export `memory`".into())),
    }
    func("alloc", &["i32"], &["i32"], true)?;
    func("transform", &["i32", "i32"], &["i64"], true)?;
    func("configure", &["i32", "i32"], &["i32"], false)?;
    func("last_error", &[], &["i64"], false)
}

struct GuestState {
    limits: StoreLimits,
}

/// One live instance of a module: its store, memory and exports.
struct Instance {
    store: Store<GuestState>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    transform: TypedFunc<(i32, i32), i64>,
    configure: Option<TypedFunc<(i32, i32), i32>>,
    last_error: Option<TypedFunc<(), i64>>,
}

/// A module instance that transforms records one at a time, rebuilt after a trap.
pub(crate) struct Guest {
    path: PathBuf,
    pre: InstancePre<GuestState>,
    limits: Limits,
    config_json: Vec<u8>,
    instance: Instance,
    /// Why the last rebuild failed; while set, each call tries again before it runs anything.
    broken: Option<String>,
    _clock: ClockLease,
}

impl Guest {
    /// Instantiate `module` and hand it its configuration (`configure`, if it exports one).
    pub(crate) fn start(module: &Module, path: &Path, limits: Limits, config_json: Vec<u8>) -> Result<Guest, LoadError> {
        check_exports(module, path)?;
        let instantiate = |message: String| LoadError::Instantiate { path: path.to_path_buf(), message };
        // No host functions: a module that imports anything is refused here, naming the import.
        let linker: Linker<GuestState> = Linker::new(engine());
        let pre = linker.instantiate_pre(module).map_err(|e| instantiate(format!("{e:#}")))?;
        let _clock = ClockLease::take().map_err(|e| instantiate(format!("cannot start the deadline clock: {e}")))?;
        let instance = fresh_instance(&pre, limits).map_err(|e| instantiate(format!("{e:#}")))?;
        let mut guest = Guest { path: path.to_path_buf(), pre, limits, config_json, instance, broken: None, _clock };
        guest.configure()?;
        Ok(guest)
    }

    fn configure(&mut self) -> Result<(), LoadError> {
        let Some(configure) = self.instance.configure.clone() else { return Ok(()) };
        let config = std::mem::take(&mut self.config_json);
        let answer = self
            .write_input(&config)
            .and_then(|(ptr, len)| configure.call(&mut self.instance.store, (ptr, len)).map_err(|e| classify(e, self.limits)));
        self.config_json = config;
        let message = match answer {
            Ok(0) => return Ok(()),
            Ok(code) => format!("configure returned {code}: {}", self.last_error()),
            Err(fault) => fault.to_string(),
        };
        Err(LoadError::Refused { path: self.path.clone(), message })
    }

    /// Run `transform` on `input`; the answer borrows the guest's memory until the next call.
    pub(crate) fn call(&mut self, input: &[u8]) -> Result<&[u8], Fault> {
        if self.broken.is_some() {
            self.rebuild();
            if let Some(reason) = &self.broken {
                return Err(Fault::Unusable(reason.clone()));
            }
        }
        let answer = self.write_input(input).and_then(|(ptr, len)| {
            self.instance.transform.call(&mut self.instance.store, (ptr, len)).map_err(|e| classify(e, self.limits))
        });
        let packed = match answer {
            Ok(packed) => packed,
            Err(fault) => {
                if fault.needs_fresh_instance() {
                    self.rebuild();
                }
                return Err(fault);
            }
        };
        if packed < 0 {
            return Err(Fault::Returned(self.last_error()));
        }
        read_packed(self.instance.memory.data(&self.instance.store), packed)
            .ok_or_else(|| Fault::Protocol(format!("transform returned bytes {} outside the module's memory", show_packed(packed))))
    }

    /// Fresh fuel and deadline, then `alloc(len)` and the bytes written there.
    fn write_input(&mut self, input: &[u8]) -> Result<(i32, i32), Fault> {
        let store = &mut self.instance.store;
        store.set_fuel(self.limits.fuel).map_err(|e| Fault::Trap(format!("{e:#}")))?;
        store.set_epoch_deadline(self.limits.deadline_ticks());
        let len = i32::try_from(input.len()).map_err(|_| Fault::TooLarge(input.len()))?;
        let ptr = self.instance.alloc.call(&mut *store, len).map_err(|e| classify(e, self.limits))?;
        self.instance
            .memory
            .write(&mut *store, ptr as u32 as usize, input)
            .map_err(|_| Fault::Protocol(format!("alloc({len}) returned {ptr}, which leaves no room for {len} bytes in memory")))?;
        Ok((ptr, len))
    }

    /// The guest's own message for its last refusal, if it exports `last_error`.
    fn last_error(&mut self) -> String {
        let Some(last_error) = self.instance.last_error.clone() else { return "(the module exports no last_error)".into() };
        self.instance.store.set_epoch_deadline(self.limits.deadline_ticks());
        let _ = self.instance.store.set_fuel(self.limits.fuel);
        match last_error.call(&mut self.instance.store, ()) {
            Ok(packed) => match read_packed(self.instance.memory.data(&self.instance.store), packed) {
                Some(bytes) => String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BYTES)]).into_owned(),
                None => format!("(last_error returned bytes {} outside the module's memory)", show_packed(packed)),
            },
            Err(e) => {
                let fault = classify(e, self.limits);
                if fault.needs_fresh_instance() {
                    self.rebuild();
                }
                format!("(last_error failed: {fault})")
            }
        }
    }

    /// After a trap: a new instance, configured again. If that fails, the guest is marked broken: every call
    /// tries again and, while it still fails, reports the guest unusable (a trapped instance is never reused,
    /// and an unconfigured one would transform records other than as configured).
    fn rebuild(&mut self) {
        self.broken = match fresh_instance(&self.pre, self.limits) {
            Ok(instance) => {
                self.instance = instance;
                self.configure().err().map(|e| e.to_string())
            }
            Err(e) => Some(format!("a new instance of {} could not be made: {e:#}", self.path.display())),
        };
        if let Some(reason) = &self.broken {
            tracing::warn!(module = %self.path.display(), reason = %reason, "the WASM instance could not be rebuilt after a trap");
        }
    }
}

fn fresh_instance(pre: &InstancePre<GuestState>, limits: Limits) -> wasmtime::Result<Instance> {
    let state = GuestState { limits: StoreLimitsBuilder::new().memory_size(limits.memory_max_bytes).trap_on_grow_failure(true).build() };
    let mut store = Store::new(engine(), state);
    store.limiter(|s| &mut s.limits);
    store.set_fuel(limits.fuel)?;
    store.set_epoch_deadline(limits.deadline_ticks());
    let instance = pre.instantiate(&mut store)?;
    let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| wasmtime::format_err!("no memory export"))?;
    Ok(Instance {
        alloc: instance.get_typed_func(&mut store, "alloc")?,
        transform: instance.get_typed_func(&mut store, "transform")?,
        configure: instance.get_typed_func(&mut store, "configure").ok(),
        last_error: instance.get_typed_func(&mut store, "last_error").ok(),
        memory,
        store,
    })
}

/// `(ptr << 32) | len` as a slice of `memory`, if it lies inside.
fn read_packed(memory: &[u8], packed: i64) -> Option<&[u8]> {
    let (ptr, len) = ((packed as u64 >> 32) as usize, (packed as u64 & 0xffff_ffff) as usize);
    memory.get(ptr..ptr.checked_add(len)?)
}

fn show_packed(packed: i64) -> String {
    format!("{}..+{}", packed as u64 >> 32, packed as u64 & 0xffff_ffff)
}

fn classify(error: wasmtime::Error, limits: Limits) -> Fault {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Fault::OutOfFuel(limits.fuel),
        Some(Trap::Interrupt) => Fault::Timeout(limits.timeout_ms),
        _ => {
            let message = format!("{error:#}");
            // The store turns a refused `memory.grow` into "forcing trap when growing memory to N bytes"
            // (trap_on_grow_failure; wasmtime 48's wording, pinned by a unit test). It is our cap only when N
            // is past it; otherwise the module grew past its own declared maximum.
            match grown_to(&message) {
                Some(bytes) if bytes > limits.memory_max_bytes => Fault::OutOfMemory(limits.memory_max_bytes),
                _ => Fault::Trap(message),
            }
        }
    }
}

/// N in wasmtime's "forcing trap when growing memory to N bytes".
fn grown_to(message: &str) -> Option<usize> {
    let rest = &message[message.find("when growing memory to ")? + "when growing memory to ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts a configuration of at most 2 bytes (`{}`); its transform always traps.
    const PICKY_AND_TRAPPING: &str = r#"(module (memory (export "memory") 1) (data (i32.const 16) "too much config")
        (func (export "alloc") (param i32) (result i32) (i32.const 1024))
        (func (export "configure") (param $ptr i32) (param $len i32) (result i32) (i32.gt_u (local.get $len) (i32.const 2)))
        (func (export "transform") (param i32 i32) (result i64) unreachable)
        (func (export "last_error") (result i64) (i64.const 0x000000100000000f)))"#;

    #[test]
    fn a_rebuild_that_fails_leaves_the_guest_unusable_until_one_succeeds() {
        let module = Module::new(engine(), PICKY_AND_TRAPPING).unwrap();
        let limits = Limits { fuel: 1_000_000, memory_max_bytes: 1 << 20, timeout_ms: 1000 };
        let path = Path::new("picky.wat");
        let mut guest = Guest::start(&module, path, limits, b"{}".to_vec()).unwrap();
        assert!(matches!(guest.call(b"{}"), Err(Fault::Trap(_))));
        assert!(guest.broken.is_none(), "rebuilt and configured");
        // The configuration it gets on the next rebuild is refused: the guest is broken, and says why.
        guest.config_json = b"{\"a\":\"b\"}".to_vec();
        assert!(matches!(guest.call(b"{}"), Err(Fault::Trap(_))));
        match guest.call(b"{}") {
            Err(Fault::Unusable(reason)) => assert!(reason.contains("too much config"), "{reason}"),
            other => panic!("expected an unusable guest, got {other:?}"),
        }
        // Once a rebuild succeeds again, records run again (here: trap again, as this module always does).
        guest.config_json = b"{}".to_vec();
        assert!(matches!(guest.call(b"{}"), Err(Fault::Trap(_))));
    }

    #[test]
    fn growth_past_the_cap_is_told_apart_from_growth_past_the_module_s_own_maximum() {
        let limits = Limits { fuel: 1_000_000, memory_max_bytes: 1 << 20, timeout_ms: 1000 };
        let grow = |max: &str| {
            let wat = format!(
                r#"(module (memory (export "memory") 1 {max})
                    (func (export "alloc") (param i32) (result i32) (i32.const 1024))
                    (func (export "transform") (param i32 i32) (result i64) (drop (memory.grow (i32.const 2))) unreachable))"#
            );
            let module = Module::new(engine(), wat).unwrap();
            let mut guest = Guest::start(&module, Path::new("grow.wat"), limits, b"{}".to_vec()).unwrap();
            guest.call(b"{}").map(|_| ()).unwrap_err()
        };
        // 1 page + 2 = 192 KiB: past a declared maximum of 2 pages, within the 1 MiB cap.
        assert!(matches!(grow("2"), Fault::Trap(_)), "past the module's own maximum is a trap, not our cap");
        let wat = r#"(module (memory (export "memory") 1)
            (func (export "alloc") (param i32) (result i32) (i32.const 1024))
            (func (export "transform") (param i32 i32) (result i64) (drop (memory.grow (i32.const 32))) (i64.const 0)))"#;
        let module = Module::new(engine(), wat).unwrap();
        let mut guest = Guest::start(&module, Path::new("grow.wat"), limits, b"{}".to_vec()).unwrap();
        assert!(matches!(guest.call(b"{}"), Err(Fault::OutOfMemory(_))), "past memory.max.bytes");
    }
}
