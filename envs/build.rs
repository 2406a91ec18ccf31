//! Compiles the C shim over ALE's C++ interface (`src/atari/ale_shim.cpp`) and links the static
//! ALE 0.12.1 library that `setup.sh` builds into the user cache (`ALE_DIR`, which
//! `.cargo/config.toml` points at `.deps/ale`).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=ALE_DIR");
    println!("cargo:rerun-if-changed=src/atari/ale_shim.cpp");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dir = std::env::var_os("ALE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../.deps/ale"));
    let lib = dir.join("lib/libale.a");
    let header = dir.join("include/ale/ale_interface.hpp");
    if !lib.is_file() || !header.is_file() {
        panic!(
            "ALE 0.12.1 is not built at {} (no lib/libale.a or include/ale/): run ./setup.sh",
            dir.display()
        );
    }
    println!("cargo:rerun-if-changed={}", lib.display());
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/atari/ale_shim.cpp")
        .include(dir.join("include"))
        .opt_level(2)
        // ALE's headers have empty virtual methods with named parameters.
        .flag_if_supported("-Wno-unused-parameter")
        .compile("fire_ale_shim");
    println!(
        "cargo:rustc-link-search=native={}",
        dir.join("lib").display()
    );
    println!("cargo:rustc-link-lib=static=ale");
    println!("cargo:rustc-link-lib=dylib=z");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    mujoco_rpath();
}

/// mujoco-rs links libmujoco.so.3.17.0 from MUJOCO_DYNAMIC_LINK_DIR (set by .cargo/config.toml
/// to the folder setup.sh fills); this crate's tests and examples find it through an rpath,
/// resolved to the real path so they keep working when the checkout moves.
fn mujoco_rpath() {
    println!("cargo:rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    if let Some(dir) = std::env::var_os("MUJOCO_DYNAMIC_LINK_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
