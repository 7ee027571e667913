//! `lifeboat`: the Azure Functions custom handler (`lifeboat handler`), the local runtime
//! (`lifeboat up`) and the operator CLI.

fn main() -> std::process::ExitCode {
    lifeboat::cli::main()
}
