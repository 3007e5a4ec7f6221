use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = snag::cli::Cli::parse();
    // Before any thread exists: this reads (and clears) LISTEN_FDS.
    snag::ops::reload::capture_startup_state();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(snag::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
