//! Exposes the Ruby version as cfgs (ruby_gte_3_2, ...) so version-specific code is chosen at
//! compile time, and the Fiber::Scheduler interface of the headers being built against as
//! `$OUT_DIR/fiber_scheduler_version` (see scheduler::io::INTERFACE_VERSION).
use std::{error::Error, fs, path::Path};

fn main() -> Result<(), Box<dyn Error>> {
    let env = rb_sys_env::activate()?;
    env.print_cargo_rerun_if_changed();
    // rb-sys passes RbConfig on as DEP_RB_RBCONFIG_* (upper-cased by Cargo).
    let hdrdir = env
        .get_rbconfig_value("RUBYHDRDIR")
        .ok_or("RbConfig::CONFIG[\"rubyhdrdir\"] is not set")?;
    let header = Path::new(hdrdir).join("ruby/fiber/scheduler.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let text = fs::read_to_string(&header).map_err(|e| format!("cannot read {}: {e}", header.display()))?;
    // `#define RUBY_FIBER_SCHEDULER_VERSION N`; Ruby 3.2 introduced it at 2, so a header
    // without it is 3.1's interface, version 1.
    let version = text
        .lines()
        .find_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["#define", "RUBY_FIBER_SCHEDULER_VERSION", n] => Some(n.parse::<u32>()),
            _ => None,
        })
        .unwrap_or(Ok(1))?;
    let out = Path::new(&std::env::var("OUT_DIR")?).join("fiber_scheduler_version");
    fs::write(out, version.to_string())?;
    Ok(())
}
