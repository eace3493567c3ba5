//! The clap command tree, argument → script dispatch, output and exit codes.

/// Entry point used by `main.rs`.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
