//! An attacker's tests of containment: components generated here (many
//! memories, big tables, many instances, compile bombs) and the spender app
//! (store calls in a loop), each checked against its limit and measured:
//! peak resident memory of a CLI process running the attack, seconds to
//! compile or refuse, store calls made before the fuel ran out.
//!
//! The figures are printed (`--nocapture` shows them); the asserted bounds
//! are the issue's (30 s and 512 MiB per compile; the memory budget plus the
//! overhead the README states), not performance targets.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artifacts::apps::limits::{AppLimits, CompileLimits};
use artifacts::apps::{AppConfig, AppHost};
use artifacts::{ArtifactStore, ArtifactType, Error};
use wasm_encoder::{
    BlockType, CanonicalFunctionSection, CodeSection, Component, ComponentExportKind,
    ComponentExportSection, ComponentInstanceSection, ComponentTypeSection, ComponentValType,
    ExportKind, ExportSection, Function, FunctionSection, InstanceSection, Instruction, MemArg,
    MemoryType, Module, ModuleSection, RefType, TableType, TypeSection, ValType,
};

use crate::fixture::each_backend;

const SPENDER: &[u8] = include_bytes!("../apps/spender.wasm");
const HOSTILE: &[u8] = include_bytes!("../apps/hostile.wasm");
const INSTALLER: &[u8] = include_bytes!("../apps/installer.wasm");
const LAUNCHER: &[u8] = include_bytes!("../apps/launcher.wasm");
const PLUGIN: &[u8] = include_bytes!("../apps/plugin.wasm");
const LAUNCHEE: &[u8] = include_bytes!("../apps/launchee-v1.wasm");

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// Generated components

/// What a generated app allocates when it is instantiated.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Memories per instance, and their size in 64 KiB pages.
    pub memories: u32,
    pub pages: u64,
    /// Tables per instance, and their size in elements.
    pub tables: u32,
    pub elements: u64,
}

/// A core module with `shape`'s memories and tables whose export `run`
/// writes to every 4 KiB of every memory and fills every table (so that
/// all of it is resident), then returns 0.
pub fn attack_module(shape: &Shape) -> Module {
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    let mut tables = wasm_encoder::TableSection::new();
    for _ in 0..shape.tables {
        tables.table(TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: shape.elements,
            maximum: None,
            shared: false,
        });
    }
    let mut memories = wasm_encoder::MemorySection::new();
    for _ in 0..shape.memories {
        memories.memory(MemoryType {
            minimum: shape.pages,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
    }
    let mut exports = ExportSection::new();
    exports.export("run", ExportKind::Func, 0);
    let mut run = Function::new([(1, ValType::I32)]);
    let bytes = i32::try_from(shape.pages * 65536).unwrap_or(i32::MAX);
    for m in 0..shape.memories {
        run.instruction(&Instruction::I32Const(0))
            .instruction(&Instruction::LocalSet(0))
            .instruction(&Instruction::Block(BlockType::Empty))
            .instruction(&Instruction::Loop(BlockType::Empty))
            .instruction(&Instruction::LocalGet(0))
            .instruction(&Instruction::I32Const(bytes))
            .instruction(&Instruction::I32GeU)
            .instruction(&Instruction::BrIf(1))
            .instruction(&Instruction::LocalGet(0))
            .instruction(&Instruction::I32Const(1))
            .instruction(&Instruction::I32Store(MemArg {
                offset: 0,
                align: 2,
                memory_index: m,
            }))
            .instruction(&Instruction::LocalGet(0))
            .instruction(&Instruction::I32Const(4096))
            .instruction(&Instruction::I32Add)
            .instruction(&Instruction::LocalSet(0))
            .instruction(&Instruction::Br(0))
            .instruction(&Instruction::End)
            .instruction(&Instruction::End);
    }
    for t in 0..shape.tables {
        run.instruction(&Instruction::I32Const(0))
            .instruction(&Instruction::RefNull(wasm_encoder::HeapType::FUNC))
            .instruction(&Instruction::I32Const(
                i32::try_from(shape.elements).unwrap_or(i32::MAX),
            ))
            .instruction(&Instruction::TableFill(t));
    }
    run.instruction(&Instruction::I32Const(0))
        .instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&run);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&tables)
        .section(&memories)
        .section(&exports)
        .section(&code);
    module
}

/// A command component (exports `wasi:cli/run`) that instantiates
/// `module` `instances` times and runs the first instance's `run`.
pub fn command(module: &Module, instances: u32) -> Vec<u8> {
    let mut c = Component::new();
    c.section(&ModuleSection(module));
    let mut inst = InstanceSection::new();
    for _ in 0..instances.max(1) {
        inst.instantiate(0, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
    }
    c.section(&inst);
    let mut alias = wasm_encoder::ComponentAliasSection::new();
    alias.alias(wasm_encoder::Alias::CoreInstanceExport {
        instance: 0,
        kind: ExportKind::Func,
        name: "run",
    });
    c.section(&alias);
    let mut types = ComponentTypeSection::new();
    types.defined_type().result(None, None);
    types
        .function()
        .params(Vec::<(&str, ComponentValType)>::new())
        .result(Some(ComponentValType::Type(0)));
    c.section(&types);
    let mut canon = CanonicalFunctionSection::new();
    canon.lift(0, 1, []);
    c.section(&canon);
    let mut instances = ComponentInstanceSection::new();
    instances.export_items([("run", ComponentExportKind::Func, 0)]);
    c.section(&instances);
    let mut export = ComponentExportSection::new();
    export.export("wasi:cli/run@0.2.0", ComponentExportKind::Instance, 0, None);
    c.section(&export);
    c.finish()
}

/// A component holding core modules (not instantiated): compiling it is
/// all the host does before refusing it as not a command.
pub fn compile_only(modules: &[Module]) -> Vec<u8> {
    let mut c = Component::new();
    for m in modules {
        c.section(&ModuleSection(m));
    }
    c.finish()
}

/// A core module of one passive data segment of `bytes` bytes.
pub fn data_module(bytes: u64) -> Module {
    let mut data = wasm_encoder::DataSection::new();
    data.passive(vec![0x5a; usize::try_from(bytes).unwrap()]);
    let mut module = Module::new();
    module.section(&data);
    module
}

/// A core module of `count` functions of type `(i32) -> i64` with the
/// given locals and body (the body's instructions, without the final end).
fn functions(count: u32, locals: &[(u32, ValType)], body: &[Instruction<'_>]) -> Module {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I64]);
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut f = Function::new(locals.iter().copied());
    for i in body {
        f.instruction(i);
    }
    f.instruction(&Instruction::End);
    for _ in 0..count {
        funcs.function(0);
        code.function(&f);
    }
    let mut module = Module::new();
    module.section(&types).section(&funcs).section(&code);
    module
}

/// Compile bombs: one function each, of the shape that makes Cranelift
/// slowest per byte.
pub mod bombs {
    use super::*;

    /// `locals` i64 locals, all live across a loop that updates each of
    /// them `rounds` times, summed at the end (10 bytes per local and
    /// round with more than 127 locals).
    pub fn live_locals(locals: u32, rounds: u32) -> Module {
        let mut body = vec![Instruction::Loop(BlockType::Empty)];
        for _ in 0..rounds {
            for l in 0..locals {
                let l = l + 1;
                body.extend([
                    Instruction::LocalGet(l),
                    Instruction::LocalGet(if l == locals { 1 } else { l + 1 }),
                    Instruction::I64Add,
                    Instruction::LocalSet(l),
                ]);
            }
        }
        body.extend([
            Instruction::LocalGet(0),
            Instruction::BrIf(0),
            Instruction::End,
            Instruction::I64Const(0),
        ]);
        for l in 0..locals {
            body.extend([Instruction::LocalGet(l + 1), Instruction::I64Add]);
        }
        functions(1, &[(locals, ValType::I64)], &body)
    }

    /// `locals` i64 locals and `blocks` blocks in a row, each a join point
    /// (a conditional branch out of it) after which one local changes; all
    /// locals are summed at the end. Cranelift's SSA construction gives
    /// every join point a parameter per live local: locals x blocks values
    /// (about 17 bytes per block).
    pub fn locals_and_blocks(locals: u32, blocks: u32) -> Module {
        locals_and_blocks_n(1, locals, blocks)
    }

    /// `count` functions of [`locals_and_blocks`].
    pub fn locals_and_blocks_n(count: u32, locals: u32, blocks: u32) -> Module {
        let mut body = Vec::new();
        for b in 0..blocks {
            let l = 1 + b % locals;
            body.extend([
                Instruction::Block(BlockType::Empty),
                Instruction::LocalGet(0),
                Instruction::BrIf(0),
                Instruction::LocalGet(l),
                Instruction::I64Const(1),
                Instruction::I64Add,
                Instruction::LocalSet(l),
                Instruction::End,
            ]);
        }
        body.push(Instruction::I64Const(0));
        for l in 0..locals {
            body.extend([Instruction::LocalGet(l + 1), Instruction::I64Add]);
        }
        functions(count, &[(locals, ValType::I64)], &body)
    }

    /// `values` constants on the operand stack at once, then added up.
    pub fn deep_stack(values: u32) -> Module {
        let mut body = vec![Instruction::Loop(BlockType::Empty)];
        for v in 0..values {
            body.push(Instruction::I64Const(v.into()));
        }
        for _ in 1..values {
            body.push(Instruction::I64Add);
        }
        body.extend([
            Instruction::LocalGet(0),
            Instruction::BrIf(0),
            Instruction::Drop,
            Instruction::End,
            Instruction::I64Const(0),
        ]);
        functions(1, &[], &body)
    }

    /// `depth` nested blocks, each with a branch out of it.
    pub fn nesting(depth: u32) -> Module {
        let mut body = Vec::new();
        for _ in 0..depth {
            body.push(Instruction::Block(BlockType::Empty));
            body.extend([Instruction::LocalGet(0), Instruction::BrIf(0)]);
        }
        for _ in 0..depth {
            body.push(Instruction::End);
        }
        body.push(Instruction::I64Const(0));
        functions(1, &[], &body)
    }

    /// `tables` br_tables of `targets` targets each, over 100 blocks.
    pub fn br_tables(tables: u32, targets: u32) -> Module {
        let mut body = Vec::new();
        for _ in 0..100 {
            body.push(Instruction::Block(BlockType::Empty));
        }
        let list: Vec<u32> = (0..targets).map(|t| t % 100).collect();
        for _ in 0..tables {
            body.extend([
                Instruction::LocalGet(0),
                Instruction::BrTable(list.clone().into(), 0),
            ]);
        }
        for _ in 0..100 {
            body.push(Instruction::End);
        }
        body.push(Instruction::I64Const(0));
        functions(1, &[], &body)
    }

    /// A function of about `bytes` bytes of straight-line arithmetic on
    /// 16 locals (all live), in a loop.
    pub fn big_body(bytes: u32) -> Module {
        let mut body = vec![Instruction::Loop(BlockType::Empty)];
        // 10 bytes per round.
        for i in 0..bytes / 10 {
            let l = 1 + i % 16;
            body.extend([
                Instruction::LocalGet(l),
                Instruction::LocalGet(1 + (i + 7) % 16),
                Instruction::I64Mul,
                Instruction::I64Const(7),
                Instruction::I64Add,
                Instruction::LocalSet(l),
            ]);
        }
        body.extend([
            Instruction::LocalGet(0),
            Instruction::BrIf(0),
            Instruction::End,
            Instruction::I64Const(0),
        ]);
        for l in 1..=16 {
            body.extend([Instruction::LocalGet(l), Instruction::I64Add]);
        }
        functions(1, &[(16, ValType::I64)], &body)
    }

    /// `count` functions of `bytes` bytes each (see [`big_body`]), in
    /// modules of at most 10,000 functions.
    pub fn many_functions(count: u32, bytes: u32) -> Vec<Module> {
        let mut modules = Vec::new();
        let mut left = count;
        while left > 0 {
            let n = left.min(10_000);
            modules.push(repeat(n, bytes));
            left -= n;
        }
        modules
    }

    fn repeat(n: u32, bytes: u32) -> Module {
        let mut body = Vec::new();
        for i in 0..bytes / 10 {
            let l = 1 + i % 4;
            body.extend([
                Instruction::LocalGet(l),
                Instruction::LocalGet(1 + (i + 1) % 4),
                Instruction::I64Mul,
                Instruction::I64Const(7),
                Instruction::I64Add,
                Instruction::LocalSet(l),
            ]);
        }
        body.push(Instruction::LocalGet(1));
        functions(n, &[(4, ValType::I64)], &body)
    }
}

// ---------------------------------------------------------------------------
// Measuring a child process

/// How a child process ended, how long it took and its peak resident memory.
pub struct Measured {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
    pub peak_mib: f64,
}

/// Runs `cmd` to completion and measures it. Peak resident memory comes
/// from `/usr/bin/time -f %M` where there is one (exact: the kernel's
/// maxrss of the child); elsewhere from the child's `VmHWM` in
/// `/proc/PID/status`, polled every 2 ms until it exits (a lower bound that
/// misses at most what the child allocated in its last 2 ms).
pub fn measure(mut cmd: Command) -> Measured {
    let time = Path::new("/usr/bin/time");
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = if time.exists() {
        let mut wrapped = Command::new(time);
        wrapped
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(report.path())
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    } else {
        std::mem::replace(&mut cmd, Command::new("true"))
    };
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let mut polled_kib = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            let hwm = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            polled_kib = polled_kib.max(hwm.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let seconds = start.elapsed().as_secs_f64();
    let peak_kib = if time.exists() {
        let text = std::fs::read_to_string(report.path()).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or(polled_kib)
    } else {
        polled_kib
    };
    Measured {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        seconds,
        peak_mib: peak_kib as f64 / 1024.0,
    }
}

/// `artifacts --dir DIR run FILE --no-compile-cache ARGS…`, measured.
fn cli_run(dir: &Path, wasm: &[u8], args: &[&str]) -> Measured {
    let hash = blake3::hash(wasm).to_hex();
    let file = dir.join(format!("app-{}.wasm", &hash[..16]));
    std::fs::write(&file, wasm).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifacts"));
    cmd.arg("--dir")
        .arg(dir.join("store"))
        .arg("run")
        .arg(&file)
        .arg("--no-compile-cache")
        .args(args)
        .env("HOME", dir);
    measure(cmd)
}

/// The CLI's peak with a trivial app: the baseline every figure is over.
fn baseline(dir: &Path) -> f64 {
    let m = cli_run(dir, HOSTILE, &["--", "invalid-hashes"]);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    m.peak_mib
}

/// `artifacts --dir DIR run OPTIONS… hostile.wasm -- ARGS…` with the CLI's
/// compile cache (after a first run the app's compile is not in the peak),
/// measured.
fn cached_hostile_run(dir: &Path, options: &[&str], args: &[&str]) -> Measured {
    let file = dir.join("hostile.wasm");
    std::fs::write(&file, HOSTILE).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifacts"));
    cmd.arg("--dir")
        .arg(dir.join("store"))
        .arg("run")
        .args(options)
        .arg(&file)
        .arg("--")
        .args(args)
        .env("HOME", dir);
    measure(cmd)
}

/// Every run of `runs` peaked within `mib` MiB of `base`'s peak.
fn peaks_within(base: &Measured, runs: &[&Measured], mib: f64) {
    for m in runs {
        assert!(
            m.peak_mib <= base.peak_mib + mib,
            "{:.1} MiB over {:.1} MiB",
            m.peak_mib,
            base.peak_mib
        );
    }
}

// ---------------------------------------------------------------------------
// Memory: one budget

/// Handles (WASI resources) live on the host, outside the memory budget:
/// an app holding as many as it may adds what README states (about 250
/// bytes each, `MAX_HANDLES` of them), and one asking for more is stopped.
/// Before the cap, 95,000 pollables added 23 MB (50,000 ran to the end).
/// Measured with the app compiled once beforehand (the CLI's compile
/// cache), so that its compile is not in the peaks.
#[test]
fn an_app_holding_handles_is_capped_and_measured() {
    let dir = tempfile::tempdir().unwrap();
    let run = |handles: &str| cached_hostile_run(dir.path(), &[], &["handles", handles]);
    let few = run("10");
    assert_eq!(few.code, Some(0), "{}", few.stderr);
    let few = run("10");
    // Just under the cap (its std holds a few handles of its own).
    let most = (artifacts::apps::limits::MAX_HANDLES - 50).to_string();
    let many = run(&most);
    assert_eq!(many.code, Some(0), "{}", many.stderr);
    assert!(
        many.stdout.ends_with(&format!("kept {most} handles\n")),
        "{}",
        many.stdout
    );
    let over = run("50000");
    eprintln!(
        "handles: 10 peak {:.1} MiB; {most} {:.1} MiB; 50,000 exit {:?}, {:.1} MiB",
        few.peak_mib, many.peak_mib, over.code, over.peak_mib
    );
    assert_eq!(over.code, Some(125), "stopped by the host: {}", over.stdout);
    assert!(
        over.stderr.contains("handle limit exceeded"),
        "{}",
        over.stderr
    );
    assert!(!over.stdout.contains("kept"), "{}", over.stdout);
    peaks_within(&few, &[&many, &over], 4.0);
}

/// Random bytes are made in the host's memory before they are copied into
/// the app's: an app limited to 16 MiB asking for 64 MiB made the host
/// hold 64 MiB more (then trapped, the bytes having nowhere to go). Now a
/// call asks for at most `MAX_RANDOM_BYTES`: more is stopped before
/// anything is made, and as many calls of the most as it likes add nothing.
#[test]
fn an_app_asking_for_random_bytes_gets_at_most_a_mebibyte_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let memory = (16 * MIB).to_string();
    let run = |len: u64, times: u32| {
        let args = ["random", &len.to_string(), &times.to_string()];
        cached_hostile_run(dir.path(), &["--memory", &memory], &args)
    };
    let few = run(16, 1);
    assert_eq!(few.code, Some(0), "{}", few.stderr);
    let few = run(16, 1);
    let most = artifacts::apps::limits::MAX_RANDOM_BYTES;
    let many = run(most, 16);
    assert_eq!(many.code, Some(0), "{}", many.stderr);
    assert_eq!(many.stdout, format!("got {} random bytes\n", 16 * most));
    let over = run(64 * MIB, 1);
    eprintln!(
        "random: 16 bytes peak {:.1} MiB; 16 x {most} {:.1} MiB; 64 MiB exit {:?}, {:.1} MiB",
        few.peak_mib, many.peak_mib, over.code, over.peak_mib
    );
    assert_eq!(over.code, Some(125), "stopped by the host: {}", over.stdout);
    assert!(over.stderr.contains("exceeds limit"), "{}", over.stderr);
    peaks_within(&few, &[&many, &over], 4.0);
}

/// A launched child's output is held by the host until its parent has it,
/// counted against the run's one memory budget (in the child's share of it
/// while the child runs): a child writing 256 MiB under `--memory 16 MiB
/// --max-output 256 MiB` is stopped once its output fills what it was
/// given. Before, the host held all of it outside the budget (the CLI
/// peaked near 300 MB; 1 GB with a 1 GiB output limit). Measured with the
/// launcher compiled once beforehand (the CLI's compile cache); the child
/// is compiled in every run.
#[test]
fn a_launched_childs_output_is_held_within_the_runs_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("launcher.wasm");
    std::fs::write(&file, LAUNCHER).unwrap();
    let budget = 16 * MIB;
    let run = |bytes: u64| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifacts"));
        cmd.arg("--dir")
            .arg(dir.path().join("store"))
            .arg("run")
            .args(["--allow-launch", "--memory", &budget.to_string()])
            .args(["--max-output", &(256 * MIB).to_string()])
            .arg(&file)
            .args(["--", "flood", &bytes.to_string()])
            .env("HOME", dir.path());
        measure(cmd)
    };
    let small = run(MIB);
    assert_eq!(small.code, Some(0), "{}", small.stderr);
    let small = run(MIB);
    assert_eq!(small.stdout, format!("flood: exit 0: {MIB} bytes back\n"));
    let large = run(256 * MIB);
    eprintln!(
        "a child's output under a 16 MiB budget: 1 MiB peak {:.1} MiB; 256 MiB peak {:.1} MiB, exit {:?}: {}",
        small.peak_mib,
        large.peak_mib,
        large.code,
        large.stdout.trim_end()
    );
    // The budget, and 8 MiB for the child's instance and allocators' slack.
    peaks_within(&small, &[&large], (budget / MIB) as f64 + 8.0);
    assert_eq!(large.code, Some(0), "{}", large.stderr);
    assert!(
        large.stdout.starts_with("flood: LaunchError::OutOfMemory("),
        "stopped at its memory: {}",
        large.stdout
    );
}

/// What README states a run may use beyond its budget: the CLI process, the
/// wasm core and compiled code (the `baseline`), plus this much.
const STATED_OVERHEAD_MIB: f64 = 48.0;

#[test]
fn generated_apps_run_and_are_measured_against_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    // Within the budget and fully resident: 3 memories of 16 MiB and
    // 2 tables of 256 Ki elements (4 MiB each as counted) in one instance.
    let ok = Shape {
        memories: 3,
        pages: 256,
        tables: 2,
        elements: 256 << 10,
    };
    let m = cli_run(dir.path(), &command(&attack_module(&ok), 1), &[]);
    println!(
        "within budget (56 MiB counted of 64): exit {:?}, peak {:.1} MiB (baseline {base:.1} MiB), {:.2} s",
        m.code, m.peak_mib, m.seconds
    );
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert!(m.peak_mib <= base + 64.0 + STATED_OVERHEAD_MIB);
}

/// Apps launching apps launching apps, each holding half of what its
/// parent held and the deepest allocating until it cannot: the family's
/// peak stays within the first app's one budget (128 MiB), where children
/// with budgets of their own would hold 250 MiB and more.
#[test]
fn a_family_of_launched_apps_shares_its_ancestors_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    let budget = 128u64 << 20;
    let m = cli_run(
        dir.path(),
        LAUNCHER,
        &[
            "--allow-launch",
            "--memory",
            &budget.to_string(),
            "--",
            "nest-hog",
            "64",
        ],
    );
    println!(
        "nest-hog: exit {:?}, peak {:.1} MiB (baseline {base:.1}), {:.2} s: {}",
        m.code, m.peak_mib, m.seconds, m.stdout
    );
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    let depth = artifacts::apps::limits::MAX_LAUNCH_DEPTH as usize;
    let deepest = format!("/plugin{}", "/n".repeat(depth - 2));
    assert!(
        m.stdout
            .contains(&format!("{deepest}: LaunchError::OutOfMemory(")),
        "the deepest ran out of what was left: {}",
        m.stdout
    );
    assert!(m.stdout.contains("/plugin/n held 32 MiB"), "{}", m.stdout);
    assert!(m.peak_mib <= base + 128.0 + STATED_OVERHEAD_MIB);
}

/// The attacks of the issue, each refused with exit 125 and the budget's
/// error, each measured: peak RSS stays under baseline + budget + overhead.
#[test]
fn memories_tables_and_instances_share_one_budget() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    let budget_mib = 64.0;
    let attacks: [(&str, Shape, u32); 5] = [
        // The 2 KB component of the issue: ~100 memories, ~100 tables of
        // 100,000 elements, ~100 instances.
        (
            "100 instances x (1 memory of 64 MiB, 1 table of 100,000)",
            Shape {
                memories: 1,
                pages: 1024,
                tables: 1,
                elements: 100_000,
            },
            100,
        ),
        (
            "4 memories of 32 MiB each",
            Shape {
                memories: 4,
                pages: 512,
                tables: 0,
                elements: 0,
            },
            1,
        ),
        (
            "20 instances x 1 memory of 4 MiB (80 MiB)",
            Shape {
                memories: 1,
                pages: 64,
                tables: 0,
                elements: 0,
            },
            20,
        ),
        (
            "20 instances x 1 table of 1 Mi elements (16 MiB counted each)",
            Shape {
                memories: 0,
                pages: 0,
                tables: 1,
                elements: 1 << 20,
            },
            20,
        ),
        (
            "1 table of 10 million elements",
            Shape {
                memories: 0,
                pages: 0,
                tables: 1,
                elements: 10_000_000,
            },
            1,
        ),
    ];
    for (name, shape, instances) in attacks {
        let wasm = command(&attack_module(&shape), instances);
        let m = cli_run(dir.path(), &wasm, &[]);
        println!(
            "{name}: {} bytes, exit {:?}, peak {:.1} MiB (baseline {base:.1}), {:.2} s: {}",
            wasm.len(),
            m.code,
            m.peak_mib,
            m.seconds,
            m.stderr.trim()
        );
        assert_eq!(m.code, Some(125), "{name}: {}", m.stderr);
        // A table larger than any table may be is refused when loaded,
        // naming that limit; the rest by the budget, as they grow.
        let limit = if shape.elements > artifacts::apps::limits::MAX_TABLE_ELEMENTS as u64 {
            "exceeds the limit of 4194304"
        } else {
            "past its limit of 67108864 bytes"
        };
        assert!(m.stderr.contains(limit), "{name}: {}", m.stderr);
        assert!(
            m.peak_mib <= base + budget_mib + STATED_OVERHEAD_MIB,
            "{name}"
        );
    }
    // A count limit on its own, through the library: 33 instances of a
    // module with nothing in it.
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let empty = Shape {
        memories: 0,
        pages: 0,
        tables: 0,
        elements: 0,
    };
    let app = host
        .load_file(&command(&attack_module(&empty), 33))
        .unwrap();
    let err = host.run(&app, &AppConfig::new("many")).unwrap_err();
    assert_eq!(
        err,
        Error::OutOfMemory {
            app: "many".into(),
            limit: 64 << 20
        }
    );
    let app = host
        .load_file(&command(&attack_module(&empty), 32))
        .unwrap();
    assert_eq!(
        host.run(&app, &AppConfig::new("many")).unwrap().exit_code,
        0
    );
}

#[test]
fn the_budget_counts_memory_and_tables_together_in_the_library() {
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    // 32 MiB of memory + 2 Mi elements (32 MiB counted): exactly 64 MiB.
    let shape = |elements| Shape {
        memories: 1,
        pages: 512,
        tables: 1,
        elements,
    };
    let fits = host
        .load_file(&command(&attack_module(&shape(2 << 20)), 1))
        .unwrap();
    assert_eq!(host.run(&fits, &AppConfig::new("a")).unwrap().exit_code, 0);
    let over = host
        .load_file(&command(&attack_module(&shape((2 << 20) + 1)), 1))
        .unwrap();
    assert_eq!(
        host.run(&over, &AppConfig::new("a")).unwrap_err(),
        Error::OutOfMemory {
            app: "a".into(),
            limit: 64 << 20
        }
    );
    // The same app under a larger budget runs.
    let mut c = AppConfig::new("a");
    c.limits = AppLimits {
        memory_bytes: 65 << 20,
        ..AppLimits::default()
    };
    assert_eq!(host.run(&over, &c).unwrap().exit_code, 0);
}

// ---------------------------------------------------------------------------
// Compiles: bounded

/// Every test app, and the core, passes the default compile limits.
#[test]
fn real_components_are_within_the_compile_limits() {
    let limits = CompileLimits::default();
    for (name, wasm) in [
        ("hostile", HOSTILE),
        ("installer", INSTALLER),
        ("plugin", PLUGIN),
        ("spender", SPENDER),
        ("core", artifacts::CORE_COMPONENT),
    ] {
        let stats = artifacts::apps::check_component(wasm, &limits).unwrap();
        println!("{name}: {stats:?}");
    }
}

/// A bomb just over each limit is refused before compiling, quickly, with
/// an error naming the limit.
#[test]
fn compile_bombs_over_the_limits_are_refused_naming_the_limit() {
    let l = CompileLimits::default();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "locals in one function",
            compile_only(&[bombs::live_locals(l.max_locals + 1, 1)]),
        ),
        (
            "values on the operand stack",
            compile_only(&[bombs::deep_stack(l.max_stack + 1)]),
        ),
        (
            "nesting depth",
            compile_only(&[bombs::nesting(l.max_nesting)]),
        ),
        (
            "br_table targets",
            compile_only(&[bombs::br_tables(2, l.max_br_table_targets / 2 + 1)]),
        ),
        (
            "bytes in one function",
            compile_only(&[bombs::big_body(l.max_function_bytes + 64)]),
        ),
        (
            "functions",
            compile_only(&bombs::many_functions(l.max_functions + 1, 16)),
        ),
        (
            "bytes of code",
            compile_only(&bombs::many_functions(
                u32::try_from(l.max_code_bytes / 4096).unwrap() + 16,
                4096,
            )),
        ),
        (
            "join values (locals and stack x blocks) in one function",
            compile_only(&[bombs::locals_and_blocks(100, 10_001)]),
        ),
        (
            "join values (locals and stack x blocks) in all functions",
            compile_only(&[bombs::locals_and_blocks_n(3, 100, 7000)]),
        ),
        (
            "core modules",
            compile_only(&vec![functions(1, &[], &[Instruction::I64Const(0)]); 101]),
        ),
    ];
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    for (limit, wasm) in cases {
        let start = Instant::now();
        let err = host.load_file(&wasm).err().expect("refused");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{limit}: {} bytes refused in {secs:.3} s: {err}",
            wasm.len()
        );
        let text = err.to_string();
        assert!(
            text.contains(limit) && text.contains("over the limit"),
            "{text}"
        );
        assert!(text.contains("refused before compiling"), "{text}");
        assert_eq!(host.compiled(), 0, "{limit}: nothing compiled");
        assert!(secs < 30.0);
    }
}

/// The issue's bomb: 20,000 live i64 locals in one function took 544 s to
/// compile. Now it is refused in a fraction of a second by the CLI.
#[test]
fn the_issues_compile_bomb_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compile_only(&[bombs::live_locals(20_000, 5)]);
    let m = cli_run(dir.path(), &wasm, &[]);
    println!(
        "20,000 live locals ({} bytes): exit {:?} in {:.2} s, peak {:.1} MiB: {}",
        wasm.len(),
        m.code,
        m.seconds,
        m.peak_mib,
        m.stderr.trim()
    );
    assert_eq!(m.code, Some(125));
    assert!(
        m.stderr
            .contains("locals in one function: 20000, over the limit of 2000")
    );
    assert!(m.seconds < 30.0 && m.peak_mib < 512.0);
}

/// A bomb of each shape at the default compile limits (just within them).
fn bombs_at_the_limits() -> Vec<(&'static str, Vec<u8>)> {
    let l = CompileLimits::default();
    let per_fn = l.max_function_bytes - 1024;
    vec![
        (
            "live locals at the limit",
            compile_only(&[bombs::live_locals(
                l.max_locals,
                per_fn / 10 / l.max_locals - 1,
            )]),
        ),
        (
            "operand stack at the limit",
            compile_only(&[bombs::deep_stack(l.max_stack)]),
        ),
        (
            "nesting at the limit",
            compile_only(&[bombs::nesting(l.max_nesting - 1)]),
        ),
        (
            "br_table targets at the limit",
            compile_only(&[bombs::br_tables(16, l.max_br_table_targets / 16)]),
        ),
        (
            "one function at the limit",
            compile_only(&[bombs::big_body(per_fn)]),
        ),
        (
            "code bytes at the limit, in functions at the limit",
            compile_only(&bombs::many_functions(
                u32::try_from(l.max_code_bytes).unwrap() / per_fn - 1,
                per_fn,
            )),
        ),
        (
            "functions at the limit",
            compile_only(&bombs::many_functions(l.max_functions - 1, 120)),
        ),
        (
            "join values at the limit in one function",
            compile_only(&[bombs::locals_and_blocks(63, 15000)]),
        ),
        (
            "join values at the limit in all functions",
            compile_only(&[bombs::locals_and_blocks_n(2, 63, 15000)]),
        ),
        ("everything at once", {
            let mut modules = bombs::many_functions(29_980, 120);
            modules.push(bombs::locals_and_blocks_n(2, 56, 15000));
            modules.extend(bombs::many_functions(15, per_fn));
            let wasm = compile_only(&modules);
            let stats = artifacts::apps::check_component(&wasm, &l).unwrap();
            println!("everything at once: {stats:?}");
            wasm
        }),
    ]
}

/// Bombs at the limits compile within 30 s and 512 MiB (CLI process, peak
/// RSS). Slow in a debug build (wasmtime and Cranelift unoptimized): run
/// with `cargo test --release` to check the bounds; in a debug build the
/// bound on time is not asserted, only memory.
#[test]
#[ignore = "minutes of compiling; run with --release --ignored"]
fn compile_bombs_at_the_limits_compile_within_30_s_and_512_mib() {
    let dir = tempfile::tempdir().unwrap();
    let cases = bombs_at_the_limits();
    for (name, wasm) in cases {
        let m = cli_run(dir.path(), &wasm, &[]);
        println!(
            "{name} ({} bytes): exit {:?} in {:.1} s, peak {:.0} MiB: {}",
            wasm.len(),
            m.code,
            m.seconds,
            m.peak_mib,
            m.stderr.trim()
        );
        assert!(
            m.stderr.contains("not a command"),
            "{name} compiled: {}",
            m.stderr
        );
        assert!(m.peak_mib < 512.0, "{name}");
        if !cfg!(debug_assertions) {
            assert!(m.seconds < 30.0, "{name}");
        }
    }
}

/// What launching a component to compile it cost: CPU seconds of the host
/// process (all its threads: wasmtime compiles on several) and fuel
/// charged to the launching app, summed over `runs` compiles.
struct CompileCost {
    runs: u32,
    cpu: f64,
    fuel: u64,
}

impl CompileCost {
    /// Nanoseconds of CPU per unit of fuel charged.
    fn ns_per_fuel(&self) -> f64 {
        self.cpu * 1e9 / self.fuel as f64
    }
}

/// How a launched component ends: run (a command), compiled and refused
/// (not a command), or refused by the compile check.
#[derive(Clone, Copy, Debug)]
enum Launched {
    Command,
    NotCommand,
    Refused,
}

/// Launches `wasm` from the launcher app in a process of its own (this
/// test binary running `compile_cost_child`), on fresh hosts until at
/// least a second of CPU is spent, and returns what loading it cost and
/// was charged (reading, checking and compiling it).
fn compile_cost(dir: &Path, name: &str, wasm: &[u8], kind: Launched) -> CompileCost {
    let file = dir.join(format!("{}.wasm", name.replace(' ', "-")));
    std::fs::write(&file, wasm).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hostile::compile_cost_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOSTILE_COMPILE_COST", &file)
        .env("HOSTILE_COMPILE_KIND", format!("{kind:?}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("compile cost ").map(|(_, figures)| figures))
        .unwrap_or_else(|| panic!("{name}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    let mut parts = line.split(' ');
    let mut next = || parts.next().unwrap();
    CompileCost {
        runs: next().parse().unwrap(),
        cpu: next().parse().unwrap(),
        fuel: next().parse().unwrap(),
    }
}

/// CPU seconds this process has used, all threads (`/proc/self/stat`,
/// in clock ticks of 10 ms).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime: fields 14 and 15 of the line, 11 and 12 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// The child of `compile_cost`: launches `$HOSTILE_COMPILE_COST` from the
/// launcher on fresh hosts and prints `compile cost RUNS CPU FUEL`: the
/// CPU and fuel of those launches less those of a launch that does not
/// compile (of the same component, compiled by then, if it is a command;
/// else of a component not stored).
#[test]
#[ignore = "run by compile_fuel_follows_compile_cpu"]
fn compile_cost_child() {
    let Ok(file) = std::env::var("HOSTILE_COMPILE_COST") else {
        return;
    };
    let kind = std::env::var("HOSTILE_COMPILE_KIND").unwrap();
    let wasm = std::fs::read(file).unwrap();
    let store = ArtifactStore::open_memory().unwrap();
    let hash = store.put(&wasm, ArtifactType::WasmModule).unwrap();
    let each = |hash: &str| {
        let mut c = AppConfig::new("launcher");
        c.args = vec!["each".into(), hash.into()];
        c.allow_launch = true;
        c.limits.fuel = u64::MAX / 2;
        c.limits.wall_time = Duration::from_secs(600);
        c
    };
    let mut config = each(&hash.to_hex());
    config.grants = vec![hash];
    let missing = each(&"0".repeat(64));
    let launch = |host: &AppHost, app: &artifacts::apps::App, config: &AppConfig| {
        let cpu = process_cpu();
        let out = host.run(app, config).unwrap();
        (process_cpu() - cpu, out.fuel_used, out.stdout)
    };
    let mut total = CompileCost {
        runs: 0,
        cpu: 0.0,
        fuel: 0,
    };
    while total.runs == 0 || (total.runs < 20 && total.cpu < 1.0) {
        let host = AppHost::new(store.clone()).unwrap();
        let app = host.load_file(LAUNCHER).unwrap();
        let before = host.compiled();
        let (cpu, fuel, out) = launch(&host, &app, &config);
        let compiles = usize::from(kind != "Refused");
        let out = String::from_utf8_lossy(&out);
        assert_eq!(host.compiled(), before + compiles, "{out}");
        assert_eq!(
            kind == "Refused",
            out.contains("refused before compiling"),
            "{out}"
        );
        let base = if kind == "Command" { &config } else { &missing };
        let (base_cpu, base_fuel, _) = launch(&host, &app, base);
        assert_eq!(host.compiled(), before + compiles, "the baseline compiled");
        total.runs += 1;
        total.cpu += cpu - base_cpu;
        total.fuel += fuel - base_fuel;
    }
    println!("compile cost {} {} {}", total.runs, total.cpu, total.fuel);
}

/// Launching a component is charged fuel in proportion to what reading,
/// checking and compiling it costs the host, whatever its shape: each bomb
/// at the compile limits, and each component the check refuses, costs at
/// most twice the CPU per unit of fuel of the real apps (each measured in a
/// process of its own, all its threads; release build). Cases can be
/// picked by name prefix with `HOSTILE_COMPILE_CASES=name,…`.
#[test]
#[ignore = "a minute of compiling; run with --release --ignored"]
fn compile_fuel_follows_compile_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let l = CompileLimits::default();
    let pick = std::env::var("HOSTILE_COMPILE_CASES").unwrap_or_default();
    let picked = |name: &str| pick.is_empty() || pick.split(',').any(|p| name.starts_with(p));
    let mut cases: Vec<(&str, Vec<u8>, Launched)> = [
        ("launchee", LAUNCHEE),
        ("plugin", PLUGIN),
        ("hostile", HOSTILE),
        ("installer", INSTALLER),
        ("spender", SPENDER),
        ("launcher", LAUNCHER),
    ]
    .into_iter()
    // An empty custom section makes each a component of its own: the
    // launcher measuring itself would otherwise reuse its own compile.
    .map(|(name, wasm)| {
        let mut wasm = wasm.to_vec();
        wasm.extend_from_slice(b"\x00\x0d\x0ccompile-cost");
        (name, wasm, Launched::Command)
    })
    .collect();
    cases.extend(
        bombs_at_the_limits()
            .into_iter()
            .map(|(name, wasm)| (name, wasm, Launched::NotCommand)),
    );
    // Read and checked to its third function, then refused.
    cases.push((
        "join values over the limit in all functions (refused)",
        compile_only(&[bombs::locals_and_blocks_n(3, 100, 7000)]),
        Launched::Refused,
    ));
    // Read and checked to its end, then refused.
    cases.push((
        "32 MiB of data, then a function over the limit (refused)",
        compile_only(&[
            data_module(l.max_component_bytes - (64 << 10)),
            bombs::live_locals(l.max_locals + 1, 1),
        ]),
        Launched::Refused,
    ));
    let mut real = (0.0, 0u64);
    let mut worst: Option<(f64, &str)> = None;
    for (name, wasm, kind) in cases {
        if !picked(name) {
            continue;
        }
        let stats = artifacts::apps::check_component(&wasm, &CompileLimits::UNLIMITED).unwrap();
        let c = compile_cost(dir.path(), name, &wasm, kind);
        let (cpu, fuel) = (c.cpu / f64::from(c.runs), c.fuel / u64::from(c.runs));
        println!(
            "{name}: {} bytes, {} of code, {} functions, {} join values: \
             {cpu:.3} s CPU, {fuel} fuel, {:.2} ns per fuel ({} runs)",
            wasm.len(),
            stats.code_bytes,
            stats.functions,
            stats.join_values,
            c.ns_per_fuel(),
            c.runs
        );
        if let Launched::Command = kind {
            real = (real.0 + cpu, real.1 + fuel);
        } else if worst.is_none_or(|(w, _)| c.ns_per_fuel() > w) {
            worst = Some((c.ns_per_fuel(), name));
        }
    }
    let base = real.0 * 1e9 / real.1 as f64;
    println!("real apps: {base:.2} ns of CPU per unit of fuel");
    if let Some((worst, name)) = worst.filter(|_| real.1 > 0) {
        println!("worst: {name}, {:.2} x the real apps'", worst / base);
        assert!(
            worst <= 2.0 * base,
            "{name} costs {:.2} x the CPU per unit of fuel of the real apps",
            worst / base
        );
    }
}

// ---------------------------------------------------------------------------
// Host work: charged in fuel

/// Runs the spender app with `args` and `fuel`; returns its result and seconds.
fn spender(
    host: &AppHost,
    args: &[&str],
    fuel: u64,
) -> (Result<artifacts::apps::AppOutcome, Error>, f64) {
    let app = host.load_file(SPENDER).unwrap();
    let mut c = AppConfig::new("spender");
    c.args = args.iter().map(|a| a.to_string()).collect();
    c.limits.fuel = fuel;
    let start = Instant::now();
    let result = host.run(&app, &c);
    (result, start.elapsed().as_secs_f64())
}

/// 20,000 records on the memory and file backends (S3 would spend minutes
/// on the puts alone; its calls cost more, not less).
fn count_in_a_loop_runs_out_of_fuel_quickly(fx: &crate::fixture::Fixture) {
    let store = fx.open();
    // 20,000 records (the host's own).
    for i in 0..20_000u32 {
        store.put(&i.to_le_bytes(), ArtifactType::Generic).unwrap();
    }
    let host = AppHost::new(store).unwrap();
    let (result, secs) = spender(&host, &["count"], 1_000_000);
    println!("count() loop with 20,000 records, 10^6 fuel: stopped after {secs:.2} s");
    assert_eq!(
        result.unwrap_err(),
        Error::OutOfFuel {
            app: "spender".into(),
            fuel: 1_000_000
        }
    );
    assert!(secs < 30.0);
}

#[test]
fn count_in_a_loop_runs_out_of_fuel_quickly_memory() {
    count_in_a_loop_runs_out_of_fuel_quickly(&crate::fixture::Fixture::memory())
}

#[test]
fn count_in_a_loop_runs_out_of_fuel_quickly_file() {
    count_in_a_loop_runs_out_of_fuel_quickly(&crate::fixture::Fixture::file())
}

each_backend! {
    fn verify_in_a_loop_runs_out_of_fuel_in_a_bounded_number_of_calls(fx) {
        let store = fx.open();
        let big = crate::fixture::pattern(48 << 20);
        let hash = store.put(&big, ArtifactType::Generic).unwrap();
        let host = AppHost::new(store).unwrap();
        let app = host.load_file(SPENDER).unwrap();
        let mut c = AppConfig::new("spender");
        c.args = vec!["verify".into(), hash.to_string()];
        c.grants = vec![hash];
        c.limits.fuel = 1_000_000_000;
        let start = Instant::now();
        let err = host.run(&app, &c).unwrap_err();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(err, Error::OutOfFuel { app: "spender".into(), fuel: 1_000_000_000 });
        // Each verify of 48 MiB costs FUEL_PER_CALL + 4 fuel a byte: 4 calls
        // fit in 10^9 fuel, the 5th is refused before any hashing.
        println!("verify of 48 MiB in a loop, 10^9 fuel: out of fuel after {secs:.2} s");
        assert!(secs < 60.0);
    }
}

#[test]
fn store_calls_cost_fuel_in_proportion_to_the_work() {
    let store = ArtifactStore::open_memory().unwrap();
    let host = AppHost::new(store).unwrap();
    let fuel_of = |args: &[&str]| {
        let app = host.load_file(SPENDER).unwrap();
        let mut c = AppConfig::new("spender");
        c.args = args.iter().map(|a| a.to_string()).collect();
        let out = host.run(&app, &c).unwrap();
        assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
        out.fuel_used
    };
    let small = fuel_of(&["put", "1000"]);
    let large = fuel_of(&["put", "1000000"]);
    println!("put of 1 KB: {small} fuel; put of 1 MB: {large} fuel");
    // The app's own work grows with the size too (it fills the buffer), but
    // the host's charge alone is 4 fuel a byte.
    assert!(large - small >= 999_000 * artifacts::apps::limits::FUEL_PER_BYTE);
}

/// A put far over the app's limit traps before the host copies it out of
/// the app's memory; one over it is refused before the core copy. Both are
/// measured in the CLI.
#[test]
fn oversized_puts_cost_the_host_little() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    let mib = |n: u64| (n * MIB).to_string();
    let budget = 128.0;
    for (what, args, expect, held) in [
        (
            "60 MiB put, artifact limit 1 MiB (hostcall limit 17 MiB)",
            vec![
                "--memory".to_string(),
                mib(128),
                "--quota-artifact-bytes".into(),
                mib(1),
                "--".into(),
                "put".into(),
                mib(60),
            ],
            125,
            0.0,
        ),
        (
            "60 MiB put, artifact limit 64 MiB, total quota 1 MiB",
            vec![
                "--memory".to_string(),
                mib(128),
                "--quota-bytes".into(),
                mib(1),
                "--".into(),
                "put".into(),
                mib(60),
            ],
            0,
            2.0 * 61.0,
        ),
        (
            "12 MiB put, artifact limit 1 MiB",
            vec![
                "--memory".to_string(),
                mib(128),
                "--quota-artifact-bytes".into(),
                mib(1),
                "--".into(),
                "put".into(),
                mib(12),
            ],
            0,
            13.0,
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let m = cli_run(dir.path(), SPENDER, &args);
        println!(
            "{what}: exit {:?}, peak {:.1} MiB (baseline {base:.1}), {:.2} s: {} {}",
            m.code,
            m.peak_mib,
            m.seconds,
            m.stdout.trim(),
            m.stderr.trim()
        );
        assert_eq!(m.code, Some(expect), "{what}: {}", m.stderr);
        // The budget, the stated overhead, and the copies README states
        // a put holds: none for one trapped, its size for one refused
        // before the core, twice its size for one the core sees.
        assert!(
            m.peak_mib <= base + budget + STATED_OVERHEAD_MIB + held,
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------
// Measuring compile times without the checks (to choose the limits)

/// A named generator of a compile bomb.
type Bomb = (String, Box<dyn Fn() -> Vec<u8>>);

/// Writes each bomb to `$HOSTILE_MEASURE_DIR` and compiles it, unchecked
/// ([`CompileLimits::UNLIMITED`]), in a child process (this test binary,
/// running `compile_child`), printing seconds and peak RSS. Run with
/// `HOSTILE_MEASURE_DIR=/tmp/bombs cargo test --release --test integration
/// hostile::measure -- --ignored --nocapture`; `HOSTILE_MEASURE=name,…`
/// picks bombs by name prefix.
#[test]
#[ignore = "measurement: minutes of compiling"]
fn measure_compile_bombs() {
    let dir = std::path::PathBuf::from(std::env::var("HOSTILE_MEASURE_DIR").unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    let pick = std::env::var("HOSTILE_MEASURE").unwrap_or_default();
    let bombs: Vec<Bomb> = vec![
        (
            "locals-1000x25".into(),
            Box::new(|| compile_only(&[bombs::live_locals(1000, 25)])),
        ),
        (
            "locals-2000x13".into(),
            Box::new(|| compile_only(&[bombs::live_locals(2000, 13)])),
        ),
        (
            "locals-4000x6".into(),
            Box::new(|| compile_only(&[bombs::live_locals(4000, 6)])),
        ),
        (
            "locals-8000x3".into(),
            Box::new(|| compile_only(&[bombs::live_locals(8000, 3)])),
        ),
        (
            "lb-2000x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks(2000, 15000)])),
        ),
        (
            "lb-1000x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks(1000, 15000)])),
        ),
        (
            "lb-500x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks(500, 15000)])),
        ),
        (
            "lb-250x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks(250, 15000)])),
        ),
        (
            "lb-2000x4000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks(2000, 4000)])),
        ),
        (
            "lb-100x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks(100, 15000)])),
        ),
        (
            "lb-20000x60000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks(20000, 60000)])),
        ),
        (
            "lbn-1x2000x1000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(1, 2000, 1000)])),
        ),
        (
            "lbn-1x130x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(1, 130, 15000)])),
        ),
        (
            "lbn-2x130x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(2, 130, 15000)])),
        ),
        (
            "lbn-5x130x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(5, 130, 15000)])),
        ),
        (
            "lbn-5x2000x1000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(5, 2000, 1000)])),
        ),
        (
            "lbn-10x2000x1000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(10, 2000, 1000)])),
        ),
        (
            "lbm-1x67x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(1, 67, 15000)])),
        ),
        (
            "lbm-2x67x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(2, 67, 15000)])),
        ),
        (
            "lbm-4x67x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(4, 67, 15000)])),
        ),
        (
            "lbm-8x34x15000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(8, 34, 15000)])),
        ),
        (
            "lbm-4x1000x1000".into(),
            Box::new(|| compile_only(&[bombs::locals_and_blocks_n(4, 1000, 1000)])),
        ),
        (
            "combo-at-limits".into(),
            Box::new(|| {
                let mut modules = bombs::many_functions(29_990, 120);
                modules.push(bombs::locals_and_blocks_n(2, 63, 15000));
                modules.push(bombs::big_body(250 << 10));
                compile_only(&modules)
            }),
        ),
        (
            "functions-40k".into(),
            Box::new(|| compile_only(&bombs::many_functions(39_999, 120))),
        ),
        (
            "code-8m".into(),
            Box::new(|| compile_only(&bombs::many_functions(31, 255 << 10))),
        ),
        (
            "stack-2000".into(),
            Box::new(|| compile_only(&[bombs::deep_stack(2000)])),
        ),
        (
            "stack-8000".into(),
            Box::new(|| compile_only(&[bombs::deep_stack(8000)])),
        ),
        (
            "stack-32000".into(),
            Box::new(|| compile_only(&[bombs::deep_stack(32000)])),
        ),
        (
            "nesting-500".into(),
            Box::new(|| compile_only(&[bombs::nesting(499)])),
        ),
        (
            "nesting-5000".into(),
            Box::new(|| compile_only(&[bombs::nesting(5000)])),
        ),
        (
            "brtable-64k".into(),
            Box::new(|| compile_only(&[bombs::br_tables(16, 4096)])),
        ),
        (
            "brtable-1m".into(),
            Box::new(|| compile_only(&[bombs::br_tables(16, 65536)])),
        ),
        (
            "body-256k".into(),
            Box::new(|| compile_only(&[bombs::big_body(255 << 10)])),
        ),
        (
            "body-1m".into(),
            Box::new(|| compile_only(&[bombs::big_body(1 << 20)])),
        ),
        (
            "code-16m".into(),
            Box::new(|| compile_only(&bombs::many_functions(63, 255 << 10))),
        ),
        (
            "code-32m".into(),
            Box::new(|| compile_only(&bombs::many_functions(127, 255 << 10))),
        ),
        (
            "functions-100k".into(),
            Box::new(|| compile_only(&bombs::many_functions(99_999, 120))),
        ),
        (
            "functions-100k-small".into(),
            Box::new(|| compile_only(&bombs::many_functions(99_999, 16))),
        ),
    ];
    for (name, make) in bombs {
        if !pick.is_empty() && !pick.split(',').any(|p| name.starts_with(p)) {
            continue;
        }
        let file = dir.join(format!("{name}.wasm"));
        let wasm = make();
        std::fs::write(&file, &wasm).unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "hostile::compile_child",
            "--ignored",
            "--nocapture",
        ])
        .env("HOSTILE_COMPILE", &file);
        let m = measure(cmd);
        let line = m
            .stdout
            .lines()
            .find(|l| l.starts_with("compiled"))
            .unwrap_or("?");
        println!(
            "{name}: {} bytes: {line}; child {:.1} s, peak {:.0} MiB",
            wasm.len(),
            m.seconds,
            m.peak_mib
        );
    }
}

/// The child of `measure_compile_bombs`: compiles `$HOSTILE_COMPILE`.
#[test]
#[ignore = "run by measure_compile_bombs"]
fn compile_child() {
    let Ok(file) = std::env::var("HOSTILE_COMPILE") else {
        return;
    };
    let wasm = std::fs::read(file).unwrap();
    let stats = artifacts::apps::check_component(&wasm, &CompileLimits::UNLIMITED).unwrap();
    let host = AppHost::new(ArtifactStore::open_memory().unwrap())
        .unwrap()
        .with_compile_limits(CompileLimits::UNLIMITED);
    let start = Instant::now();
    let result = host.load_file(&wasm);
    println!(
        "compiled in {:.1} s ({}) {stats:?}",
        start.elapsed().as_secs_f64(),
        match result {
            Ok(_) => "a command".to_string(),
            Err(e) => e.to_string().chars().take(60).collect(),
        }
    );
}

/// What a real app needs of the instance, memory and table counts: the
/// least that runs the hostile app's sandbox mode, well under the defaults.
#[test]
fn real_apps_need_few_instances_memories_and_tables() {
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let app = host.load_file(HOSTILE).unwrap();
    let runs = |limits: AppLimits| {
        let mut c = AppConfig::new("hostile");
        c.args = vec!["invalid-hashes".into()];
        c.limits = limits;
        host.run(&app, &c).is_ok_and(|o| o.exit_code == 0)
    };
    let d = AppLimits::default();
    let least = |set: &dyn Fn(usize) -> AppLimits| (0..=64).find(|&n| runs(set(n))).unwrap();
    let instances = least(&|n| AppLimits {
        max_instances: n,
        ..d
    });
    let memories = least(&|n| AppLimits {
        max_memories: n,
        ..d
    });
    let tables = least(&|n| AppLimits { max_tables: n, ..d });
    println!("the hostile app needs {instances} instances, {memories} memories, {tables} tables");
    assert!(
        instances * 4 <= d.max_instances
            && memories <= d.max_memories
            && tables * 4 <= d.max_tables
    );
}
