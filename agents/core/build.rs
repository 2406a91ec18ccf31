//! Links libtorch (`torch_link::emit`) and compiles the C shim `src/torch_shim.cpp` over the
//! parts of libtorch tch does not bind (the fused Adam step, autocast on the CPU) against the
//! headers of the same libtorch (`LIBTORCH`, which `.cargo/config.toml` points at `.deps/torch`).
use std::path::PathBuf;

fn main() {
    torch_link::emit();
    println!("cargo:rerun-if-changed=src/torch_shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let libtorch = PathBuf::from(std::env::var_os("LIBTORCH").expect("torch_link checked it"));
    let libtorch = libtorch.canonicalize().unwrap_or(libtorch);
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/torch_shim.cpp")
        .include(libtorch.join("include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .opt_level(2)
        // libtorch's headers trip these in code we do not own.
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .compile("fire_torch_shim");
    // The shim calls into libtorch_cpu and c10; name them after the shim's archive so the
    // linker resolves its symbols whatever order torch-sys's own link lines come in.
    println!(
        "cargo:rustc-link-search=native={}",
        libtorch.join("lib").display()
    );
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    println!("cargo:rustc-link-lib=dylib=stdc++");
}
