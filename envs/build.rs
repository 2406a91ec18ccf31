// ale-sys links ALE 0.6.0 as a static C++ library but not the C++ runtime it needs.
fn main() {
    println!("cargo:rustc-link-lib=dylib=stdc++");
}
