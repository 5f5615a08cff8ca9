//! With the `embed-app` feature the binary carries `app/dist`: refuse to
//! build without it, and rebuild when it changes (files added included).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_EMBED_APP").is_none() {
        return;
    }
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from).unwrap_or_default();
    let dist = manifest.parent().unwrap_or(&manifest).join("app/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    if !dist.join("index.html").is_file() {
        eprintln!(
            "error: the embed-app feature needs the built app in {}: run `cargo xtask build-app` first",
            dist.display()
        );
        std::process::exit(1);
    }
}
