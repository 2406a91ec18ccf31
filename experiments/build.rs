fn main() {
    torch_link::emit();
    // humanoid-env links libmujoco.so.3.17.0 (through envs/mujoco-rs); rpath to setup.sh's copy.
    println!("cargo:rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    if let Some(dir) = std::env::var_os("MUJOCO_DYNAMIC_LINK_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
