//! Build-script helper for every crate whose binaries or tests link libtorch.
//!
//! Call [`emit`] from `build.rs`. It makes the crate's binaries, tests, examples and benches
//! run without `LD_LIBRARY_PATH`, and usable on CUDA:
//!
//! * an rpath to the libtorch directory that torch-sys built against (`LIBTORCH`, set by the
//!   workspace's `.cargo/config.toml` to the cache `setup.sh` fills), resolved to its real path
//!   so a binary keeps working when the checkout moves;
//! * `--no-as-needed -ltorch_cuda`, because nothing references libtorch_cuda's symbols directly
//!   and the linker would otherwise drop it, leaving `tch::Cuda::is_available()` false even on
//!   a GPU machine. Skipped when the libtorch build has no CUDA library.

use std::path::PathBuf;

/// Prints the `cargo:` lines; panics with a clear message when `setup.sh` has not been run.
pub fn emit() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        panic!("LIBTORCH is not set: build from the workspace (its .cargo/config.toml sets it) after running ./setup.sh");
    };
    let lib = PathBuf::from(libtorch).join("lib");
    let lib = lib.canonicalize().unwrap_or_else(|_| {
        panic!(
            "libtorch not found at {}: run ./setup.sh first (it installs torch 2.11.0 into a user cache)",
            lib.display()
        )
    });
    println!("cargo:rerun-if-changed={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
