//! uring_machine: an io_uring-backed fiber machine for Ruby. This file only defines the Ruby
//! classes and binds their methods; each concern lives in its own module.
use magnus::{
    function, method, prelude::*, value::Lazy, Error, ExceptionClass, RClass, RModule, Ruby,
};

mod args;
mod buffer;
mod fd;
mod fibers;
mod fs;
mod io;
mod machine;
mod metrics;
mod multishot;
mod net;
mod op;
mod opcodes;
mod process;
mod rb;
mod ring;
mod wakeup;

use machine::Machine;

pub static TIMEOUT_ERROR_CLASS: Lazy<ExceptionClass> = Lazy::new(|ruby| {
    let module: RModule = ruby
        .class_object()
        .const_get("UringMachine")
        .expect("UringMachine defined");
    module
        .const_get("TimeoutError")
        .expect("UringMachine::TimeoutError defined")
});

fn machine_new(ruby: &Ruby, args: &[magnus::Value]) -> Result<Machine, Error> {
    let args = magnus::scan_args::scan_args::<(), (), (), (), _, ()>(args)?;
    let kw = magnus::scan_args::get_kwargs::<_, (), (Option<i64>,), ()>(
        args.keywords,
        &[],
        &["entries"],
    )?;
    let entries = kw.optional.0.unwrap_or(4096);
    if !(1..=32768).contains(&entries) {
        return Err(Error::new(
            ruby.exception_arg_error(),
            format!("entries must be within 1..32768, got {entries}"),
        ));
    }
    Machine::new(entries as u32)
}

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    machine::init_globals();
    ruby.require("timeout")?;
    let module = ruby.define_module("UringMachine")?;
    let timeout_base: RClass = ruby
        .class_object()
        .const_get::<_, RModule>("Timeout")?
        .const_get("Error")?;
    module.define_class("TimeoutError", timeout_base)?;

    let class = module.define_class("Machine", ruby.class_object())?;
    class.define_singleton_method("new", function!(machine_new, -1))?;
    class.define_method("schedule", method!(Machine::rb_schedule, -1))?;
    class.define_method("snooze", method!(Machine::rb_snooze, 0))?;
    class.define_method("suspend", method!(Machine::rb_suspend, 0))?;
    class.define_method("wakeup", method!(Machine::rb_wakeup, 0))?;
    class.define_method("sleep", method!(Machine::rb_sleep, 1))?;
    class.define_method("timeout", method!(Machine::rb_timeout, -1))?;
    class.define_method("join", method!(Machine::rb_join, -1))?;
    class.define_private_method("__run_fiber__", method!(Machine::rb_run_fiber, 2))?;
    class.define_method(
        "report_on_exception",
        method!(Machine::rb_report_on_exception, 0),
    )?;
    class.define_method(
        "report_on_exception=",
        method!(Machine::rb_set_report_on_exception, 1),
    )?;
    class.define_method("metrics", method!(Machine::rb_metrics, 0))?;
    class.define_method("setup_flags", method!(Machine::rb_setup_flags, 0))?;

    class.define_method("read", method!(Machine::rb_read, -1))?;
    class.define_method("write", method!(Machine::rb_write, -1))?;
    class.define_method("writev", method!(Machine::rb_writev, -1))?;
    class.define_method("recv", method!(Machine::rb_recv, -1))?;
    class.define_method("send", method!(Machine::rb_send, -1))?;
    class.define_method("splice", method!(Machine::rb_splice, 3))?;
    class.define_method("tee", method!(Machine::rb_tee, 3))?;
    class.define_method("poll", method!(Machine::rb_poll, 2))?;
    class.define_method("fsync", method!(Machine::rb_fsync, 1))?;
    class.define_method("close", method!(Machine::rb_close, 1))?;
    class.define_method("accept", method!(Machine::rb_accept, 1))?;
    class.define_method("accept_each", method!(Machine::rb_accept_each, 1))?;
    class.define_method("read_each", method!(Machine::rb_read_each, 1))?;
    class.define_method("connect", method!(Machine::rb_connect, 3))?;
    class.define_method("socket", method!(Machine::rb_socket, -1))?;
    class.define_method("bind", method!(Machine::rb_bind, 3))?;
    class.define_method("listen", method!(Machine::rb_listen, -1))?;
    class.define_method("shutdown", method!(Machine::rb_shutdown, -1))?;
    class.define_method("open", method!(Machine::rb_open, -1))?;
    class.define_method("statx", method!(Machine::rb_statx, 1))?;
    class.define_method("waitid", method!(Machine::rb_waitid, 1))?;
    Ok(())
}
