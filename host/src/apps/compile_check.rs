//! Static checks on an app component before it is compiled: wasmtime's
//! compiler (Cranelift) takes time and memory that grow faster than the
//! size of the code with some shapes of code (thousands of live locals or
//! operand-stack values in one function, huge functions), so a small
//! component can make the host compile for minutes. [`check`] walks every
//! core module of a component (nested components included) with
//! `wasmparser` and refuses anything over a [`CompileLimits`], naming the
//! limit, in time linear in the component's size.

use wasmparser::{
    FuncValidator, FuncValidatorAllocations, FunctionBody, Operator, OperatorsReader, Parser,
    Payload, ValidPayload, Validator, ValidatorResources, WasmFeatures,
};

use crate::Error;

/// Bounds on what the host will compile, checked before compiling.
///
/// The defaults keep the compile of any component within them under 30 s
/// and 512 MiB on two cores (`.ci/run` compiles generated worst cases at
/// each limit; docs/apps-and-limits.md) while allowing any ordinary app: a Rust program built for
/// `wasm32-wasip2` uses a small fraction of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// The largest component, in bytes.
    pub max_component_bytes: u64,
    /// The largest function body, in bytes.
    pub max_function_bytes: u32,
    /// The most locals (declared, parameters not counted) in one function.
    pub max_locals: u32,
    /// The most values on one function's operand stack at any point.
    pub max_stack: u32,
    /// The deepest nesting of blocks, loops and ifs in one function (the
    /// function's own frame counts one).
    pub max_nesting: u32,
    /// The most `br_table` targets in one function, all tables together.
    pub max_br_table_targets: u32,
    /// The most *join values* in one function: its locals (parameters
    /// included) plus its highest operand stack, times its blocks, loops,
    /// ifs and elses plus one. Cranelift gives every join point of the
    /// control flow a parameter for each value live across it, so this
    /// bounds the SSA values it builds: it is what makes a function of a
    /// few hundred KB compile for minutes and gigabytes (docs/benchmarks.md).
    pub max_join_values: u64,
    /// The most join values in all functions together.
    pub max_total_join_values: u64,
    /// The most functions defined in all core modules together.
    pub max_functions: u32,
    /// The most bytes of function bodies in all core modules together.
    pub max_code_bytes: u64,
    /// The most core modules in the component, nested ones included.
    pub max_modules: u32,
    /// The most globals one core module defines.
    pub max_globals: u32,
}

impl CompileLimits {
    /// No bounds beyond the size of the component (and wasmparser's and
    /// wasmtime's own): only for components you trust.
    pub const UNLIMITED: Self = Self {
        max_component_bytes: u64::MAX,
        max_function_bytes: u32::MAX,
        max_locals: u32::MAX,
        max_stack: u32::MAX,
        max_nesting: u32::MAX,
        max_br_table_targets: u32::MAX,
        max_join_values: u64::MAX,
        max_total_join_values: u64::MAX,
        max_functions: u32::MAX,
        max_code_bytes: u64::MAX,
        max_modules: u32::MAX,
        max_globals: u32::MAX,
    };
}

impl Default for CompileLimits {
    /// 32 MiB components; functions of at most 256 KiB, 2,000 locals,
    /// 2,000 values on the stack, nesting depth 500, 64 Ki `br_table`
    /// targets and 1 million join values; 30,000 functions, 8 MiB of code
    /// and 2 million join values in all, in at most 100 modules of at most
    /// 10,000 globals.
    fn default() -> Self {
        Self {
            max_component_bytes: 32 << 20,
            max_function_bytes: 256 << 10,
            max_locals: 2_000,
            max_stack: 2_000,
            max_nesting: 500,
            max_br_table_targets: 64 << 10,
            max_join_values: 1_000_000,
            max_total_join_values: 2_000_000,
            max_functions: 30_000,
            max_code_bytes: 8 << 20,
            max_modules: 100,
            max_globals: 10_000,
        }
    }
}

/// What [`check`] counted in a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodeStats {
    /// Core modules, nested ones included.
    pub modules: u32,
    /// Functions defined, all modules together.
    pub functions: u32,
    /// Bytes of function bodies, all modules together.
    pub code_bytes: u64,
    /// The largest function body.
    pub max_function_bytes: u32,
    /// The most locals in one function.
    pub max_locals: u32,
    /// The highest operand stack in one function (as [`CompileLimits::max_stack`] counts).
    pub max_stack: u32,
    /// The deepest nesting in one function.
    pub max_nesting: u32,
    /// The most `br_table` targets in one function.
    pub max_br_table_targets: u32,
    /// The most join values in one function (see [`CompileLimits::max_join_values`]).
    pub max_join_values: u64,
    /// Join values in all functions together.
    pub join_values: u64,
    /// The nesting depth of every block, loop and if where it opens,
    /// summed over all functions.
    pub block_depths: u64,
    /// The most globals in one module.
    pub max_globals: u32,
}

/// Fuel a launch is charged per byte of a component it makes the host
/// read, verify and check before compiling (and for the parts of it that
/// are not code: data, custom sections), whether it then compiles or not.
pub const FUEL_PER_CHECKED_BYTE: u64 = 20;
/// Fuel a launch is charged per byte of function bodies the host compiles
/// for it.
pub const FUEL_PER_CODE_BYTE: u64 = 1_600;
/// Fuel a launch is charged per join value (see
/// [`CompileLimits::max_join_values`]) of the code the host compiles for it.
pub const FUEL_PER_JOIN_VALUE: u64 = 600;
/// Fuel a launch is charged per function the host compiles for it.
pub const FUEL_PER_FUNCTION: u64 = 20_000;
/// Fuel a launch is charged per level of nesting of each block, loop and
/// if of the code the host compiles for it (see [`CodeStats::block_depths`]):
/// Cranelift's time grows with the square of the nesting.
pub const FUEL_PER_BLOCK_DEPTH: u64 = 100;

impl CodeStats {
    /// The fuel compiling this code is charged (beyond the
    /// [`FUEL_PER_CHECKED_BYTE`] of reading and checking it): what compiling
    /// costs the host, where wasm runs about 1,000 fuel a microsecond.
    /// Cranelift's time follows the bytes of code, the functions, and the
    /// join values (see [`CompileLimits::max_join_values`]), which make a
    /// byte of code cost several times more in the worst shapes.
    pub fn compile_fuel(&self) -> u64 {
        (self.code_bytes.saturating_mul(FUEL_PER_CODE_BYTE))
            .saturating_add(self.join_values.saturating_mul(FUEL_PER_JOIN_VALUE))
            .saturating_add(u64::from(self.functions).saturating_mul(FUEL_PER_FUNCTION))
            .saturating_add(self.block_depths.saturating_mul(FUEL_PER_BLOCK_DEPTH))
    }
}

fn refuse(what: impl std::fmt::Display) -> Error {
    Error::InvalidApp(format!("{what} (refused before compiling)"))
}

/// Invalid input, in one line (wasmparser's messages can run to a hex dump).
fn not_valid(what: &str, e: &wasmparser::BinaryReaderError) -> Error {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    Error::InvalidApp(format!("not a valid {what}: {line}"))
}

fn over(what: &str, value: u64, limit: u64) -> Result<(), Error> {
    if value > limit {
        return Err(refuse(format!(
            "{what}: {value}, over the limit of {limit}"
        )));
    }
    Ok(())
}

/// Checks `bytes` (a component or core module) against `limits` without
/// compiling it, validating it on the way (malformed or invalid input is
/// refused too); returns what it counted.
pub fn check(bytes: &[u8], limits: &CompileLimits) -> Result<CodeStats, Error> {
    over(
        "component size in bytes",
        bytes.len() as u64,
        limits.max_component_bytes,
    )?;
    let invalid = |e: wasmparser::BinaryReaderError| not_valid("component", &e);
    let mut stats = CodeStats::default();
    let mut globals_here = 0u32;
    let mut validator = Validator::new_with_features(WasmFeatures::default());
    let mut allocs = FuncValidatorAllocations::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        let valid = validator.payload(&payload).map_err(invalid)?;
        match &payload {
            Payload::Version {
                encoding: wasmparser::Encoding::Module,
                ..
            } => {
                stats.modules = stats.modules.saturating_add(1);
                over(
                    "core modules",
                    stats.modules.into(),
                    limits.max_modules.into(),
                )?;
                globals_here = 0;
            }
            Payload::GlobalSection(reader) => {
                globals_here = globals_here.saturating_add(reader.count());
                stats.max_globals = stats.max_globals.max(globals_here);
                over(
                    "globals in one module",
                    globals_here.into(),
                    limits.max_globals.into(),
                )?;
            }
            Payload::CodeSectionStart { count, .. } => {
                stats.functions = stats.functions.saturating_add(*count);
                over(
                    "functions",
                    stats.functions.into(),
                    limits.max_functions.into(),
                )?;
            }
            _ => {}
        }
        if let ValidPayload::Func(func, body) = valid {
            let size = u32::try_from(body.range().len()).unwrap_or(u32::MAX);
            stats.code_bytes = stats.code_bytes.saturating_add(size.into());
            stats.max_function_bytes = stats.max_function_bytes.max(size);
            over("bytes of code", stats.code_bytes, limits.max_code_bytes)?;
            let mut func = func.into_validator(std::mem::take(&mut allocs));
            check_body(&mut func, &body, size, limits, &mut stats)?;
            allocs = func.into_allocations();
        }
    }
    Ok(stats)
}

/// Validates one function, checking the limits as it goes (so a function
/// over them is refused as soon as it gets there).
fn check_body(
    func: &mut FuncValidator<ValidatorResources>,
    body: &FunctionBody<'_>,
    size: u32,
    limits: &CompileLimits,
    stats: &mut CodeStats,
) -> Result<(), Error> {
    let invalid = |e: wasmparser::BinaryReaderError| not_valid("function", &e);
    let mut locals = 0u32;
    for entry in body.get_locals_reader().map_err(invalid)? {
        let (count, _) = entry.map_err(invalid)?;
        locals = locals.saturating_add(count);
    }
    stats.max_locals = stats.max_locals.max(locals);
    over(
        "locals in one function",
        locals.into(),
        limits.max_locals.into(),
    )?;
    over(
        "bytes in one function",
        size.into(),
        limits.max_function_bytes.into(),
    )?;
    let mut reader = body.get_binary_reader();
    func.read_locals(&mut reader).map_err(invalid)?;
    let mut ops = OperatorsReader::new(reader);
    let (mut max_depth, mut max_stack, mut targets) = (0u32, 0u32, 0u32);
    let mut blocks = 1u64;
    while !ops.eof() {
        let offset = ops.original_position();
        let op = ops.read().map_err(invalid)?;
        if let Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::If { .. }
        | Operator::Else
        | Operator::TryTable { .. } = &op
        {
            blocks += 1;
        }
        if let Operator::BrTable { targets: t } = &op {
            targets = targets.saturating_add(t.len());
            over(
                "br_table targets in one function",
                targets.into(),
                limits.max_br_table_targets.into(),
            )?;
        }
        func.op(offset, &op).map_err(invalid)?;
        let depth = func.control_stack_height();
        if let Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::If { .. }
        | Operator::TryTable { .. } = &op
        {
            stats.block_depths = stats.block_depths.saturating_add(depth.into());
        }
        if depth > max_depth {
            max_depth = depth;
            over(
                "nesting depth in one function",
                depth.into(),
                limits.max_nesting.into(),
            )?;
        }
        let height = func.operand_stack_height();
        if height > max_stack {
            max_stack = height;
            over(
                "values on the operand stack in one function",
                height.into(),
                limits.max_stack.into(),
            )?;
        }
    }
    ops.finish().map_err(invalid)?;
    let values = u64::from(func.len_locals()) + u64::from(max_stack);
    let joins = values.saturating_mul(blocks);
    stats.max_join_values = stats.max_join_values.max(joins);
    stats.join_values = stats.join_values.saturating_add(joins);
    over(
        "join values (locals and stack x blocks) in one function",
        joins,
        limits.max_join_values,
    )?;
    over(
        "join values (locals and stack x blocks) in all functions",
        stats.join_values,
        limits.max_total_join_values,
    )?;
    stats.max_nesting = stats.max_nesting.max(max_depth);
    stats.max_stack = stats.max_stack.max(max_stack);
    stats.max_br_table_targets = stats.max_br_table_targets.max(targets);
    Ok(())
}
