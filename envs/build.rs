// ale-sys links ALE 0.6.0 as a static C++ library but not the C++ runtime it needs.
fn main() {
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
