//! The `hadiag` binary: argument parsing and exit codes only; each subcommand lives in
//! `hadiag::cli`.

fn main() -> std::process::ExitCode {
    hadiag::cli::main()
}
