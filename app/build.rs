//! Generates the `i18n` module from `locales/*.json` (leptos_i18n's
//! code generation), so a missing or misspelt key fails the build.

use std::error::Error;
use std::path::PathBuf;

use leptos_i18n_build::{Config, ParseOptions, TranslationsInfos};

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?).join("i18n");
    // Plain-text interpolation (`t_string!` with values) for messages built in code.
    let options = ParseOptions::default().interpolate_display(true);
    let infos = TranslationsInfos::parse(Config::new("vi")?.add_locale("en")?.parse_options(options))?;
    infos.emit_diagnostics();
    infos.rerun_if_locales_changed();
    infos.generate_i18n_module(out)?;
    Ok(())
}
