//! Project tasks that need Rust rather than shell.
//!
//! `cargo run -p xtask -- componentize IN.wasm OUT.wasm` wraps a core wasm
//! module built by wit-bindgen into a component, using the WIT type
//! information wit-bindgen embedded in the module. The output depends only
//! on the input, so the committed component can be rebuilt bit for bit.

use std::process::ExitCode;

fn componentize(input: &str, output: &str) -> Result<(), String> {
    let module = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|encoder| encoder.encode())
        .map_err(|e| format!("componentizing {input}: {e:#}"))?;
    std::fs::write(output, component).map_err(|e| format!("writing {output}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, input, output] if cmd == "componentize" => componentize(input, output),
        _ => Err("usage: xtask componentize IN.wasm OUT.wasm".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
