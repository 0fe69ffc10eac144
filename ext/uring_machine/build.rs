// Exposes the Ruby version as cfgs (ruby_gte_3_2, ...) so version-specific code is chosen at compile time.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rb_sys_env::activate()?;
    Ok(())
}
