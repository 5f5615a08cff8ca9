//! `cargo xtask ...`: the tasks that need more than cargo.
//!
//! * `build-app [--dev]`: the WebAssembly app bundle in `app/dist/`: the
//!   login module and the whole app (cargo build for wasm32, wasm-bindgen,
//!   wasm-opt, each), static files, sizes;
//! * `run [ARGS]`: build the app, then the server with `--demo --app-dir app/dist ARGS`;
//! * `test [ARGS]`: install what the tests need, build the app, `cargo test --workspace ARGS`
//!   on the embedded store; then, when `KHEO_TEST_DATABASE_URL` names a
//!   PostgreSQL server, the store's contract tests and the sync suite again
//!   on PostgreSQL (each test server on a database of its own).
//!
//! Tools come only from package registries: the wasm32 target from rustup,
//! `wasm-bindgen-cli` from crates.io at the exact version of the
//! `wasm-bindgen` crate in `Cargo.lock`, `wasm-opt` from npm's `binaryen`
//! pinned in `tools/package-lock.json` (Debian's binaryen 108 emits a module
//! browsers refuse), Chromium and ChromeDriver from Debian. Each is installed
//! only when missing.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const APP_CRATE: &str = "kheo-app";
/// `kheo-app` as a file name: what rustc names the `.wasm`.
const APP_LIB: &str = "kheo_app";
/// The login module (`app/login`), and its file name.
const LOGIN_CRATE: &str = "kheo-login";
const LOGIN_LIB: &str = "kheo_login";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// What `sw.js` says in place of the build hash.
const BUILD_PLACEHOLDER: &str = "__KHEO_BUILD__";
/// Features of the module wasm-bindgen emits (rustc's default wasm32 features).
const WASM_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
    "--enable-mutable-globals",
];

#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", about = "Kheo build tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build the app bundle into app/dist (release: optimised with wasm-opt).
    BuildApp {
        /// Debug build without wasm-opt: faster, larger.
        #[arg(long)]
        dev: bool,
    },
    /// Build the app (release), then run the server with the demo data and the app.
    Run {
        /// Passed to kheo-server after `--demo --app-dir app/dist`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Install what the tests need, build the app (release), run `cargo test --workspace`.
    Test {
        /// Passed to `cargo test --workspace`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    match task(Cli::parse().task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn task(task: Task) -> Result<()> {
    let root = workspace_root();
    match task {
        Task::BuildApp { dev } => {
            let tools = ensure_tools(&root)?;
            build_app(&root, &tools, dev)
        }
        Task::Run { args } => {
            let tools = ensure_tools(&root)?;
            build_app(&root, &tools, false)?;
            let mut server = cargo(&root);
            server.args(["run", "--release", "-p", "kheo-server", "--", "--demo", "--app-dir", "app/dist"]).args(args);
            run(&mut server)
        }
        Task::Test { args } => {
            let tools = ensure_tools(&root)?;
            ensure_browser()?;
            build_app(&root, &tools, false)?;
            let mut test = cargo(&root);
            test.args(["test", "--workspace"]).args(&args).env_remove(TEST_DATABASE_VAR);
            // Browser tests (wasm-bindgen-test-runner, WebDriver clients) find the browser here.
            for (var, path) in [("CHROMEDRIVER", CHROMEDRIVER), ("CHROME", CHROMIUM)] {
                if std::env::var_os(var).is_none() {
                    test.env(var, path);
                }
            }
            run(&mut test)?;
            test_on_postgres(&root, &args)
        }
    }
}

/// Names the PostgreSQL server the tests may create databases on.
const TEST_DATABASE_VAR: &str = "KHEO_TEST_DATABASE_URL";

/// The store's contract tests and the sync suite once more, on PostgreSQL,
/// when a server is named; a clear line when none is.
fn test_on_postgres(root: &Path, args: &[OsString]) -> Result<()> {
    let named = std::env::var(TEST_DATABASE_VAR).ok().filter(|u| !u.is_empty());
    let Some(url) = named else {
        eprintln!(
            "xtask: PostgreSQL tests SKIPPED: {TEST_DATABASE_VAR} is not set. Set it to a server where the \
             user may create databases (postgres://user:password@127.0.0.1/postgres); .ci/run does."
        );
        return Ok(());
    };
    eprintln!("xtask: PostgreSQL tests on {}", url.split('@').next_back().unwrap_or("the named server"));
    for suite in [&["-p", "kheo-server", "--lib", "store::"][..], &["-p", "kheo-tests", "--test", "sync"][..]] {
        let mut test = cargo(root);
        test.arg("test").args(suite).args(args).env(TEST_DATABASE_VAR, &url);
        run(&mut test)?;
    }
    Ok(())
}

/// The directory of the workspace `Cargo.toml` (this crate sits one below it).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// The cargo that runs us (cargo sets `CARGO`), in the workspace root.
fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root);
    command
}

fn run(command: &mut Command) -> Result<()> {
    eprintln!("xtask: {}", describe(command));
    let status = command.status().with_context(|| format!("could not start {}", describe(command)))?;
    ensure!(status.success(), "{} failed ({status})", describe(command));
    Ok(())
}

/// The trimmed standard output of a command that succeeded, or None.
fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

struct Tools {
    wasm_bindgen: PathBuf,
    wasm_opt: PathBuf,
}

/// Installs what is missing: the wasm32 target, wasm-bindgen-cli, wasm-opt.
fn ensure_tools(root: &Path) -> Result<Tools> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|t| t.trim() == WASM_TARGET) {
        run(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }

    let version = locked_version(root, "wasm-bindgen")?;
    let wanted = format!("wasm-bindgen {version}");
    let cargo_bin = cargo_home().join("bin");
    let candidates = [PathBuf::from("wasm-bindgen"), cargo_bin.join("wasm-bindgen")];
    let found = candidates.iter().find(|c| output(Command::new(c).arg("--version")).as_deref() == Some(&wanted));
    let wasm_bindgen = match found {
        Some(path) => path.clone(),
        None => {
            // Not --locked: a dependency in wasm-bindgen-cli's own lock file is missing from the registry.
            run(cargo(root).args(["install", "wasm-bindgen-cli", "--version", &version, "--force"]))?;
            let path = cargo_bin.join("wasm-bindgen");
            let got = output(Command::new(&path).arg("--version"));
            ensure!(got.as_deref() == Some(&wanted), "{} says {got:?} after installing, not {wanted}", path.display());
            path
        }
    };

    let tools = root.join("tools");
    let wasm_opt = tools.join("node_modules/.bin/wasm-opt");
    if !wasm_opt.exists() {
        let npm = Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(&tools).status();
        match npm {
            Ok(status) if status.success() => {}
            Ok(status) => bail!("`npm ci --prefix tools` failed ({status})"),
            Err(e) => bail!(
                "npm is needed for wasm-opt (binaryen from npm) and could not start: {e}; install Node.js and npm (Debian: apt-get install nodejs npm)"
            ),
        }
    }
    ensure!(wasm_opt.exists(), "npm ci did not install {}", wasm_opt.display());
    Ok(Tools { wasm_bindgen, wasm_opt })
}

fn cargo_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return home.into();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cargo")
}

/// The version of `package` in `Cargo.lock` (exactly one must be there).
fn locked_version(root: &Path, package: &str) -> Result<String> {
    let path = root.join("Cargo.lock");
    let lock = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let name_line = format!("name = \"{package}\"");
    let mut versions = Vec::new();
    for block in lock.split("[[package]]") {
        let mut lines = block.lines().map(str::trim);
        if lines.clone().any(|l| l == name_line)
            && let Some(v) = lines.find_map(|l| l.strip_prefix("version = \"").and_then(|v| v.strip_suffix('"')))
        {
            versions.push(v.to_owned());
        }
    }
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{package} is not in {}", path.display()),
        many => bail!("{} holds several versions of {package}: {many:?}", path.display()),
    }
}

/// Debian's Chromium and ChromeDriver, for the browser tests.
fn ensure_browser() -> Result<()> {
    let present = || Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if present() {
        return Ok(());
    }
    let root = output(Command::new("id").arg("-u")).as_deref() == Some("0");
    let apt = Command::new("apt-get").arg("--version").output().is_ok_and(|o| o.status.success());
    if !(root && apt) {
        bail!(
            "the browser tests need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); \
             install them as root with: apt-get update && apt-get install -y chromium chromium-driver"
        );
    }
    // A fresh machine has not read the package lists yet.
    run(Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    ensure!(present(), "apt-get installed chromium but {CHROMIUM} or {CHROMEDRIVER} is still missing");
    Ok(())
}

/// The app's WebAssembly modules, as (crate, library file name): the login
/// module a phone with no stored login downloads first, and the whole app
/// (`app/src/boot.rs` says how the page starts them).
const MODULES: [(&str, &str); 2] = [(LOGIN_CRATE, LOGIN_LIB), (APP_CRATE, APP_LIB)];

/// For each module: cargo build (wasm32) → wasm-bindgen → wasm-opt (release);
/// then the static files and the sizes.
///
/// What wasm-bindgen, wasm-opt and the compressors make of a module is kept
/// in `target/xtask/<profile>/<module>/` and reused while cargo's module is unchanged.
fn build_app(root: &Path, tools: &Tools, dev: bool) -> Result<()> {
    let profile = if dev { "dev" } else { "wasm-release" };
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target_dir = if target_dir.is_absolute() { target_dir } else { root.join(target_dir) };
    let profile_dir = if dev { "debug" } else { profile };

    let mut stages = Vec::new();
    for (krate, lib) in MODULES {
        // One cargo run per module: built in one run, cargo would unify
        // kheo-app's features and link the whole app's entry point (and so
        // the whole app) into the login module.
        let mut build = cargo(root);
        build.args(["build", "-p", krate, "--target", WASM_TARGET, "--profile", profile]);
        run(&mut build)?;
        let wasm = target_dir.join(WASM_TARGET).join(profile_dir).join(format!("{lib}.wasm"));
        ensure!(wasm.exists(), "cargo built no {}", wasm.display());

        let stage = target_dir.join("xtask").join(profile_dir).join(lib);
        let stamp = target_dir.join("xtask").join(format!("{profile_dir}-{lib}.input"));
        let mut input = Sha256::new();
        input.update(std::fs::read(&wasm)?);
        input.update(format!("{} {dev} {WASM_FEATURES:?}", tools.wasm_bindgen.display()));
        let input = hex(&input.finalize());
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(&input) && stage.join(bg_name(lib)).exists() {
            eprintln!("xtask: {} is unchanged; reusing {}", wasm.display(), stage.display());
        } else {
            stage_bundle(tools, &wasm, &stage, lib, dev)?;
            std::fs::write(&stamp, &input)?;
        }
        stages.push(stage);
    }

    let dist = root.join("app/dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist).with_context(|| format!("removing {}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist)?;
    for stage in &stages {
        copy_tree(stage, &dist)?;
    }
    let statics = copy_tree(&root.join("app/static"), &dist)?;

    // The build id covers everything the service worker caches.
    let mut hash = Sha256::new();
    for (_, lib) in MODULES {
        for name in [js_name(lib), bg_name(lib)] {
            hash.update(std::fs::read(dist.join(name))?);
        }
    }
    for file in &statics {
        hash.update(file.to_string_lossy().as_bytes());
        hash.update(std::fs::read(dist.join(file))?);
    }
    let build_id = hex(&hash.finalize()[..6]);
    let sw = dist.join("sw.js");
    if sw.exists() {
        let text = std::fs::read_to_string(&sw)?;
        ensure!(text.contains(BUILD_PLACEHOLDER), "app/static/sw.js has no {BUILD_PLACEHOLDER} to replace");
        std::fs::write(&sw, text.replace(BUILD_PLACEHOLDER, &build_id))?;
    }

    let mut report =
        format!("build {build_id} ({})\n", if dev { "dev: no wasm-opt, fast compression" } else { "release" });
    let mut brotli_total = Vec::new();
    for (_, lib) in MODULES {
        let mut module = 0;
        for name in [bg_name(lib), js_name(lib)] {
            let size = |suffix: &str| std::fs::metadata(dist.join(format!("{name}{suffix}"))).map(|m| m.len());
            module += size(".br")?;
            report.push_str(&format!(
                "{name}: {} raw, {} gzip, {} brotli\n",
                human(size("")?),
                human(size(".gz")?),
                human(size(".br")?)
            ));
        }
        brotli_total.push(module);
    }
    report.push_str(&format!(
        "before the login screen ({LOGIN_LIB}): {} brotli; the whole app ({APP_LIB}): {} brotli\n",
        human(brotli_total[0]),
        human(brotli_total[1])
    ));
    std::fs::write(dist.join("size.txt"), &report)?;
    print!("{report}");
    println!("app built in {}", dist.display());
    Ok(())
}

/// What wasm-bindgen names a module's WebAssembly, and its JS.
fn bg_name(lib: &str) -> String {
    format!("{lib}_bg.wasm")
}

fn js_name(lib: &str) -> String {
    format!("{lib}.js")
}

/// wasm-bindgen, wasm-opt (release) and the `.gz`/`.br` copies of one module's files, into `stage`.
fn stage_bundle(tools: &Tools, wasm: &Path, stage: &Path, lib: &str, dev: bool) -> Result<()> {
    if stage.exists() {
        std::fs::remove_dir_all(stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    std::fs::create_dir_all(stage)?;
    let mut bindgen = Command::new(&tools.wasm_bindgen);
    bindgen.args(["--target", "web", "--no-typescript", "--out-name", lib, "--out-dir"]).arg(stage).arg(wasm);
    if dev {
        bindgen.arg("--debug");
    }
    run(&mut bindgen)?;

    let bg_wasm = stage.join(bg_name(lib));
    if !dev {
        let mut opt = Command::new(&tools.wasm_opt);
        opt.arg("-Oz").args(WASM_FEATURES).arg(&bg_wasm).arg("-o").arg(&bg_wasm);
        run(&mut opt)?;
    }

    // Sent by the server to browsers that accept them. Best compression for a
    // release; fast levels for a dev build (its sizes are only indicative).
    let (gzip_level, brotli_quality) = if dev { (1, 4) } else { (9, 11) };
    for name in [bg_name(lib), js_name(lib)] {
        let bytes = std::fs::read(stage.join(&name))?;
        std::fs::write(stage.join(format!("{name}.gz")), gzip(&bytes, gzip_level)?)?;
        std::fs::write(stage.join(format!("{name}.br")), brotli(&bytes, brotli_quality)?)?;
    }
    Ok(())
}

/// Copies every file under `from` into `to`; returns their relative paths, sorted.
fn copy_tree(from: &Path, to: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = from.join(&relative);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                std::fs::create_dir_all(to.join(&path))?;
                pending.push(path);
            } else {
                std::fs::copy(entry.path(), to.join(&path))
                    .with_context(|| format!("copying {}", entry.path().display()))?;
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(bytes: &[u8], level: u32) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

fn brotli(bytes: &[u8], quality: i32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}

fn human(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.2} MB ({bytes} B)", bytes as f64 / 1e6)
    } else {
        format!("{:.1} KB ({bytes} B)", bytes as f64 / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_one_locked_version_of_a_package() {
        let root = workspace_root();
        let version = locked_version(&root, "wasm-bindgen").unwrap();
        assert!(version.starts_with("0.2."), "{version}");
        assert!(locked_version(&root, "no-such-package-here").is_err());
    }

    #[test]
    fn sizes_read_as_kilobytes_or_megabytes() {
        assert_eq!(human(575_667), "575.7 KB (575667 B)");
        assert_eq!(human(1_915_677), "1.92 MB (1915677 B)");
    }
}
