use magnus::{Error, Ruby};

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let _module = ruby.define_module("UringMachine")?;
    Ok(())
}
