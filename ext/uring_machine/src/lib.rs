//! uring_machine: an io_uring-backed fiber machine for Ruby. This file only defines the Ruby
//! classes and binds their methods; the code lives in layers whose dependencies point one way:
//! fast/ (IO methods that bypass the hooks) -> scheduler/ (Fiber::Scheduler hooks) -> ops/
//! (operations by family) -> machine/ (run queue, fibers, timers) -> ring/ (io_uring, op
//! table), with ruby/ (conversions) a leaf all may use.
#![deny(clippy::undocumented_unsafe_blocks)]
use magnus::{function, method, prelude::*, Error, RClass, RModule, Ruby};

mod fast;
mod http;
mod machine;
mod ops;
mod ring;
mod ruby;
mod scheduler;

use machine::Machine;
use ops::process_handle::ProcessHandle;
use scheduler::Scheduler;

fn machine_new(ruby: &Ruby, args: &[magnus::Value]) -> Result<Machine, Error> {
    let args = magnus::scan_args::scan_args::<(), (), (), (), _, ()>(args)?;
    let kw = magnus::scan_args::get_kwargs::<_, (), (Option<i64>,), ()>(args.keywords, &[], &["entries"])?;
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
    machine::init_globals()?;
    machine::fiber_thread::install()?;
    ruby.require("timeout")?;
    let module = ruby.define_module("UringMachine")?;
    module.define_module_function("wake_fd_waiters", function!(scheduler::close::rb_wake_fd_waiters, -1))?;
    module.define_module_function("__op_serial__", function!(scheduler::close::rb_op_serial, 0))?;
    ops::dns::reply::init()?;
    module.define_module_function("__dns_transaction__", function!(ops::dns::reply::rb_dns_transaction, 4))?;
    module.define_module_function("__dns_reply__", function!(ops::dns::reply::rb_dns_reply, 2))?;
    module.define_module_function(
        "__dns_address_family__",
        function!(ops::dns::reply::rb_dns_address_family, 1),
    )?;
    module.define_module_function("machine_of", function!(machine::fibers::rb_machine_of, 1))?;
    module.define_module_function("parent_of", function!(machine::tree::rb_parent_of, 1))?;
    module.define_module_function("children_of", function!(machine::tree::rb_children_of, 1))?;
    module.define_module_function("__spun_children_of__", function!(machine::tree::rb_spun_children_of, 1))?;
    module.define_module_function("__adopt__", function!(machine::tree::rb_adopt, 3))?;
    module.define_module_function("__watch__", function!(machine::tree::rb_watch, 2))?;
    module.define_module_function("__report_to__", function!(machine::tree::rb_report_to, 2))?;
    module.define_module_function("__body_of__", function!(machine::tree::rb_body_of, 1))?;
    module.define_module_function("__set_home__", function!(machine::tree::rb_set_home, 2))?;
    module.define_module_function("__name_of__", function!(machine::fiber_info::rb_name_of, 1))?;
    module.define_module_function("__set_name__", function!(machine::fiber_info::rb_set_name, 2))?;
    module.define_module_function("__born__", function!(machine::fiber_info::rb_born, 1))?;
    module.define_module_function("__set_body__", function!(machine::fiber_info::rb_set_body, 3))?;
    module.define_module_function("__isolate__", function!(machine::fiber_info::rb_isolate, 1))?;
    module.define_module_function("__isolated__", function!(machine::fiber_info::rb_isolated, 1))?;
    module.define_module_function("__watcher_of__", function!(machine::fiber_info::rb_watcher_of, 1))?;
    module.define_module_function("__joiners_of__", function!(machine::fiber_info::rb_joiners_of, 1))?;
    module.define_module_function(
        "release_fd_waiters",
        function!(scheduler::close::rb_release_fd_waiters, 1),
    )?;
    let timeout_base: RClass = ruby
        .class_object()
        .const_get::<_, RModule>("Timeout")?
        .const_get("Error")?;
    module.define_class("TimeoutError", timeout_base)?;
    module.define_class("Stop", ruby.exception_exception().as_r_class())?;
    machine::fibers::remember_timeout_error(ruby);
    machine::signals::remember_stop(ruby);
    ruby::partial_write::define(module)?;
    module.define_module_function("__watchdog_round__", function!(machine::watchdog::rb_watchdog_round, 0))?;
    module.define_module_function("__watchdog_ended__", function!(machine::watchdog::rb_watchdog_ended, 0))?;
    module.define_module_function(
        "__raised_by_thread__",
        function!(machine::signals::rb_mark_raised_by_thread, 1),
    )?;
    module.define_module_function(
        "emit_signal_exception",
        function!(machine::signals::rb_emit_signal_exception, -1),
    )?;

    module.define_module_function("mailbox_of", function!(machine::mailbox::rb_mailbox_of, 1))?;
    module.define_module_function("receive", function!(machine::mailbox::rb_receive, 0))?;
    module.define_module_function(
        "receive_all_pending",
        function!(machine::mailbox::rb_receive_all_pending, 0),
    )?;
    // Listed in UringMachine.patches (lib/uring_machine/core_ext/fiber.rb).
    let fiber: RClass = ruby.class_object().const_get("Fiber")?;
    fiber.define_method("<<", method!(machine::mailbox::rb_fiber_send, 1))?;
    let class = module.define_class("Mailbox", ruby.class_object())?;
    class.define_alloc_func::<machine::mailbox::Mailbox>();
    class.define_method("push", method!(machine::mailbox::Mailbox::rb_push, 1))?;
    class.define_method("receive", method!(machine::mailbox::Mailbox::rb_receive, 0))?;
    class.define_method(
        "receive_all_pending",
        method!(machine::mailbox::Mailbox::rb_receive_all_pending, 0),
    )?;
    class.define_method("size", method!(machine::mailbox::Mailbox::rb_size, 0))?;
    class.define_method("__waiters__", method!(machine::mailbox::Mailbox::rb_waiters, 0))?;
    class.define_method("limit", method!(machine::mailbox::Mailbox::rb_limit, 0))?;
    class.define_method("limit=", method!(machine::mailbox::Mailbox::rb_set_limit, 1))?;

    let class = module.define_class("Machine", ruby.class_object())?;
    class.define_singleton_method("new", function!(machine_new, -1))?;
    class.define_method("schedule", method!(Machine::rb_schedule, -1))?;
    class.define_method("snooze", method!(Machine::rb_snooze, 0))?;
    class.define_method("suspend", method!(Machine::rb_suspend, 0))?;
    class.define_method("__lock_fibers__", method!(Machine::rb_lock_fibers, 1))?;
    class.define_method("__pause_timers__", method!(Machine::rb_pause_timers, 0))?;
    class.define_method("__resume_timers__", method!(Machine::rb_resume_timers, 0))?;
    class.define_method("__timers_paused__", method!(Machine::rb_timers_paused, 0))?;
    class.define_method("__waits__", method!(Machine::rb_waits, 0))?;
    class.define_method("__runqueue__", method!(Machine::rb_runqueue, 0))?;
    class.define_method("wakeup", method!(Machine::rb_wakeup, 0))?;
    class.define_method("sleep", method!(Machine::rb_sleep, 1))?;
    class.define_method("timeout", method!(Machine::rb_timeout, -1))?;
    class.define_method("join", method!(Machine::rb_join, -1))?;
    class.define_private_method("__fiber_begin__", method!(Machine::rb_fiber_begin, 0))?;
    class.define_private_method("__fiber_args__", method!(Machine::rb_fiber_args, 0))?;
    class.define_private_method("__fiber_end__", method!(Machine::rb_fiber_end, 2))?;
    class.define_private_method("__fiber_unwound__", method!(Machine::rb_fiber_unwound, 0))?;
    class.define_private_method("__spin__", method!(Machine::rb_schedule_spun, 1))?;
    class.define_method("__request_spin__", method!(Machine::rb_request_spin, 1))?;
    class.define_method("report_on_exception", method!(Machine::rb_report_on_exception, 0))?;
    class.define_method("report_on_exception=", method!(Machine::rb_set_report_on_exception, 1))?;
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
    class.define_method("__dns_exchange__", method!(Machine::rb_dns_exchange, -1))?;
    class.define_method("__dns_receive__", method!(Machine::rb_dns_receive, 2))?;
    class.define_method("__dns_reply_to__", method!(Machine::rb_dns_reply_to, 3))?;
    class.define_method("__dns_send_to__", method!(Machine::rb_dns_send_to, 3))?;
    class.define_method("register_buffers", method!(Machine::rb_register_buffers, 1))?;
    class.define_method("unregister_buffers", method!(Machine::rb_unregister_buffers, -1))?;
    define_scheduler(ruby, module)?;
    http::define(ruby, module)?;
    define_coalesced_writes(module)?;
    define_process(ruby, module)
}

/// UringMachine::CoalescedWrites (IO#write/puts/print with several pieces as one write under
/// the Scheduler), prepended to IO by lib/uring_machine/core_ext/io.rb.
fn define_coalesced_writes(module: RModule) -> Result<(), Error> {
    use fast::coalesce;
    module.define_module_function("coalesce_writes", function!(coalesce::rb_enabled, 0))?;
    module.define_module_function("coalesce_writes=", function!(coalesce::rb_set_enabled, 1))?;
    let writes = module.define_module("CoalescedWrites")?;
    writes.define_method("write", method!(coalesce::rb_write, -1))?;
    writes.define_method("puts", method!(coalesce::rb_puts, -1))?;
    writes.define_method("print", method!(coalesce::rb_print, -1))?;
    define_fast_io(module)
}

/// UringMachine::FastIO (IO#readpartial/sysread/read(n) straight to the fd under the
/// Scheduler), prepended to IO by lib/uring_machine/core_ext/io.rb; IO#write's fast path is in
/// CoalescedWrites#write.
fn define_fast_io(module: RModule) -> Result<(), Error> {
    use fast::io as fast_io;
    module.define_module_function("fast_io", function!(fast_io::rb_enabled, 0))?;
    module.define_module_function("fast_io=", function!(fast_io::rb_set_enabled, 1))?;
    let fast = module.define_module("FastIO")?;
    fast.define_method("readpartial", method!(fast_io::rb_readpartial, -1))?;
    fast.define_method("sysread", method!(fast_io::rb_sysread, -1))?;
    fast.define_method("read", method!(fast_io::rb_read, -1))?;
    define_fast_lines(fast)?;
    define_fast_calls(module)
}

/// UringMachine::FastCalls, called by the Ruby methods that lib/uring_machine/core_ext/ puts in
/// place of IO#read_nonblock (io.rb; fast/nonblock.rs) and BasicSocket#recv
/// (basic_socket.rb; fast/socket.rs), where false means "take CRuby's method"; and
/// FastCalls#syswrite, which io.rb makes IO#syswrite.
fn define_fast_calls(module: RModule) -> Result<(), Error> {
    use fast::{nonblock, socket};
    let calls = module.define_module("FastCalls")?;
    calls.define_singleton_method("read_nonblock", function!(nonblock::rb_read_nonblock, 4))?;
    calls.define_method("syswrite", method!(nonblock::rb_io_syswrite, 1))?;
    calls.define_singleton_method("recv", function!(socket::rb_recv, 4))?;
    Ok(())
}

/// FastIO's buffered readers (fast/lines.rs): they fill the read-ahead buffer with a
/// direct read, then CRuby's method reads from it.
fn define_fast_lines(fast: RModule) -> Result<(), Error> {
    use fast::lines;
    lines::remember_originals()?;
    fast.define_method("gets", method!(lines::rb_gets, -1))?;
    fast.define_method("readline", method!(lines::rb_readline, -1))?;
    fast.define_method("each_line", method!(lines::rb_each_line, -1))?;
    fast.define_method("readlines", method!(lines::rb_readlines, -1))?;
    fast.define_method("getc", method!(lines::rb_getc, -1))?;
    fast.define_method("readchar", method!(lines::rb_readchar, -1))?;
    fast.define_method("getbyte", method!(lines::rb_getbyte, -1))?;
    fast.define_method("readbyte", method!(lines::rb_readbyte, -1))?;
    fast.define_method("eof?", method!(lines::rb_eof, -1))?;
    fast.define_method("eof", method!(lines::rb_eof, -1))?;
    Ok(())
}

fn define_process(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let class = module.define_class("Process", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("open", function!(ProcessHandle::rb_open, 1))?;
    class.define_method("pid", method!(ProcessHandle::rb_pid, 0))?;
    class.define_method("fileno", method!(ProcessHandle::rb_fileno, 0))?;
    class.define_method("closed?", method!(ProcessHandle::rb_is_closed, 0))?;
    class.define_method("status", method!(ProcessHandle::rb_status, 0))?;
    class.define_method("alive?", method!(ProcessHandle::rb_is_alive, 0))?;
    class.define_private_method("wait_on", method!(ProcessHandle::rb_wait_on, 1))?;
    class.define_private_method("reap_if_exited", method!(ProcessHandle::rb_reap_if_exited, 0))?;
    class.define_private_method("send_signal", method!(ProcessHandle::rb_send_signal, 1))?;
    class.define_private_method("close_pidfd", method!(ProcessHandle::rb_close_pidfd, 0))?;
    Ok(())
}

fn define_scheduler(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let class = module.define_class("Scheduler", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("new", method!(Scheduler::rb_new, -1))?;
    class.define_method("machine", method!(Scheduler::rb_machine, 0))?;
    class.define_private_method("__start_fiber__", method!(Scheduler::rb_start_fiber, 2))?;
    class.define_private_method("__queue_fiber__", method!(Scheduler::rb_queue_fiber, 1))?;
    class.define_private_method("__fiber_begin__", method!(Scheduler::rb_fiber_begin, 0))?;
    class.define_private_method("__fiber_args__", method!(Scheduler::rb_fiber_args, 0))?;
    class.define_private_method("__fiber_end__", method!(Scheduler::rb_fiber_end, 2))?;
    class.define_private_method("__fiber_unwound__", method!(Scheduler::rb_fiber_unwound, 0))?;
    class.define_private_method("wait_any", method!(Scheduler::rb_wait_any, 2))?;
    class.define_private_method("interval_seconds", function!(Scheduler::rb_interval_seconds, 1))?;
    class.define_private_method("run_until_fibers_finish", method!(Scheduler::rb_close, 2))?;
    class.define_method("transfer", method!(Scheduler::rb_transfer, 0))?;
    class.define_method("block", method!(Scheduler::rb_block, -1))?;
    class.define_method("unblock", method!(Scheduler::rb_unblock, 2))?;
    class.define_method("kernel_sleep", method!(Scheduler::rb_kernel_sleep, -1))?;
    class.define_method("__sleep_timed_out__", method!(Scheduler::rb_sleep_timed_out, 0))?;
    class.define_method("timeout_after", method!(Scheduler::rb_timeout_after, -1))?;
    class.define_method("process_wait", method!(Scheduler::rb_process_wait, 2))?;
    class.define_method("io_wait", method!(Scheduler::rb_io_wait, 3))?;
    class.define_method("io_read", method!(Scheduler::rb_io_read, -1))?;
    class.define_method("io_write", method!(Scheduler::rb_io_write, -1))?;
    class.define_method("io_pread", method!(Scheduler::rb_io_pread, -1))?;
    class.define_method("io_pwrite", method!(Scheduler::rb_io_pwrite, -1))?;
    class.define_method("pwrite_string", method!(Scheduler::rb_pwrite_string, 3))?;
    class.const_set("INTERFACE_VERSION", scheduler::io::INTERFACE_VERSION)?;
    class.define_singleton_method("__hook_arguments__", function!(scheduler::io::rb_hook_arguments, -1))?;
    class.define_method("io_splice", method!(Scheduler::rb_io_splice, -1))?;
    class.define_method("__dns_exchange__", method!(Machine::rb_dns_exchange, -1))?;
    class.define_method("__dns_receive__", method!(Machine::rb_dns_receive, 2))?;
    class.define_method("__dns_reply_to__", method!(Machine::rb_dns_reply_to, 3))?;
    class.define_method("__dns_send_to__", method!(Machine::rb_dns_send_to, 3))?;
    class.define_method("register_buffers", method!(Scheduler::rb_register_buffers, 1))?;
    class.define_method("unregister_buffers", method!(Scheduler::rb_unregister_buffers, -1))?;
    module.define_module_function(
        "__copy_stream_check__",
        function!(scheduler::splice::copy_stream_check, 2),
    )?;
    #[cfg(ruby_gte_4_0)]
    {
        class.define_method("fiber_interrupt", method!(Scheduler::rb_fiber_interrupt, 2))?;
        class.define_method("yield", method!(Scheduler::rb_yield, 0))?;
    }
    Ok(())
}
