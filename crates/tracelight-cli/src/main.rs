//! The `tracelight` command.

fn main() -> std::process::ExitCode {
    tracelight_cli::run()
}
