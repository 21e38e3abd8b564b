//! The `lakeflow` binary: pipeline projects of SQL files described by a spec file
//! (`lakeflow.yml`). `lakeflow init --name NAME` makes one; `lakeflow --help` lists the
//! commands. Everything is in [`lakeflow::cli`].

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lakeflow::cli::Cli::project().main()
}
