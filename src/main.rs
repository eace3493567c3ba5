//! The `langsmith` binary: parse, dispatch, map the result to an exit code.

fn main() -> std::process::ExitCode {
    langsmith::cli::main()
}
