//! Coalesced multi-piece writes: UringMachine::CoalescedWrites, prepended to IO by
//! lib/uring_machine/core_ext/io.rb. Under a fiber scheduler CRuby hands each piece of
//! `io.write(a, b)` (and each line of `puts`) to the io_write hook separately, so a TCP
//! socket sends one segment per piece and the second waits for the peer's delayed ACK. When
//! the IO is in a state where CRuby would write the pieces' bytes unchanged and at once (sync
//! mode, nothing buffered, no encoding conversion or newline decorator), and the current fiber
//! is non-blocking under our Scheduler, the pieces are joined into one String and written by
//! CRuby's own one-argument IO#write: same bytes, return value, partial-write loop, errors and
//! IO#timeout. In every other state the methods are CRuby's own (`super`), run with a count of
//! the bytes they write, for the exception that may stop them (fast/write_count.rs).

use magnus::{rb_sys::protect, Error, Value};
use rb_sys::{ruby_value_type, VALUE};

use crate::fast::plain_io::{plain_write_fptr, Needs};
use crate::fast::switch::Switch;
use crate::fast::write_count::counted;
use crate::ruby::names::{names, symbol};
use crate::ruby::value::{self as rb, raw, NIL};
use crate::scheduler::Scheduler;

static ENABLED: Switch = Switch::on();

/// UringMachine.coalesce_writes = bool
pub fn rb_set_enabled(flag: Value) -> Value {
    ENABLED.set(flag)
}

/// UringMachine.coalesce_writes → bool
pub fn rb_enabled() -> bool {
    ENABLED.is_on()
}

/// The current fiber's scheduler when the fiber is non-blocking under a UringMachine::Scheduler
/// (or subclass).
pub fn our_scheduler() -> Option<VALUE> {
    // SAFETY: rb_fiber_scheduler_current reads the current thread's scheduler (nil for a
    // blocking fiber); it calls no method and allocates nothing.
    let scheduler = unsafe { rb_sys::rb_fiber_scheduler_current() };
    if scheduler == NIL || rb::is_special(scheduler) || rb::type_of(scheduler) != ruby_value_type::RUBY_T_DATA {
        return None;
    }
    let ours =
        <Scheduler as magnus::TypedData>::data_type() as *const magnus::DataType as *const rb_sys::rb_data_type_t;
    // SAFETY: `scheduler` is a live T_DATA object (checked above, held by the thread): reading
    // whether it is typed and its type pointer reads its header.
    let is_ours = unsafe { rb_sys::RTYPEDDATA_P(scheduler) && rb_sys::RTYPEDDATA_TYPE(scheduler) == ours };
    is_ours.then_some(scheduler)
}

/// Whether the current fiber runs non-blocking under our scheduler.
pub fn under_our_scheduler() -> bool {
    our_scheduler().is_some()
}

/// Whether a write of several pieces to `io` may be coalesced: the write side of `io` is an
/// open, writable IO in sync mode with an empty write buffer, whose writes CRuby passes on
/// unchanged (no external encoding other than binary, no text mode, no newline or stateful
/// decorator: Needs::WRITES_AT_ONCE). An IO in any other state, closed included, takes CRuby's
/// path, which raises.
pub fn coalescible(io: VALUE) -> bool {
    ENABLED.is_on() && under_our_scheduler() && plain_write_fptr(io, Needs::WRITES_AT_ONCE).is_some()
}

pub fn call_super(args: &[VALUE]) -> Result<Value, Error> {
    // SAFETY: called from a method Ruby called (a CoalescedWrites or FastIO method), so there
    // is a super method; `args` outlives the call. What it raises is caught by protect.
    protect(|| unsafe { rb_sys::rb_call_super(args.len() as i32, args.as_ptr()) }).map(rb::value)
}

/// A binary String the pieces' bytes are appended to (ours: never frozen, shared or locked,
/// so appending raises only NoMemoryError, caught like any other).
struct Joined(VALUE);

impl Joined {
    fn new() -> Result<Joined, Error> {
        // SAFETY: the new String is ours and lives on this stack; allocating it and setting its
        // encoding may raise NoMemoryError only, under protect.
        protect(|| unsafe {
            let s = rb_sys::rb_str_buf_new(256);
            rb_sys::rb_enc_associate_index(s, rb_sys::rb_ascii8bit_encindex());
            s
        })
        .map(Joined)
    }

    /// Appends a String's bytes.
    fn push(&self, piece: VALUE) -> Result<(), Error> {
        let joined = self.0;
        // SAFETY: `piece` is a String (callers pass Strings only), read inside the call as it is
        // now; growing `joined` may raise NoMemoryError, under protect.
        protect(|| unsafe { rb_sys::rb_str_buf_cat(joined, rb_sys::RSTRING_PTR(piece), rb_sys::RSTRING_LEN(piece)) })
            .map(|_| ())
    }

    fn push_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        let joined = self.0;
        // SAFETY: the pointer and length describe `bytes`, which outlives the call; growing
        // `joined` may raise NoMemoryError, under protect.
        protect(|| unsafe { rb_sys::rb_str_buf_cat(joined, bytes.as_ptr() as *const _, bytes.len() as _) }).map(|_| ())
    }

    fn is_empty(&self) -> bool {
        // SAFETY: self.0 is our String (Joined::new): RSTRING_LEN reads its header.
        unsafe { rb_sys::RSTRING_LEN(self.0) == 0 }
    }
}

/// `obj.to_s` as CRuby's writes convert their arguments (rb_obj_as_string); may raise.
fn as_string(obj: VALUE) -> Result<VALUE, Error> {
    if rb::is_string(obj) {
        return Ok(obj);
    }
    // SAFETY: `obj` is the caller's argument; its to_s runs under protect.
    protect(|| unsafe { rb_sys::rb_obj_as_string(obj) })
}

/// IO#write(*objects): several pieces become one write when `coalescible`. CRuby's sync-mode
/// path converts every piece (to_s) before writing any, as this does.
/// One String argument, or the joined pieces, take the fast path when they can
/// (fast/io.rs).
pub fn rb_write(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    if !under_our_scheduler() {
        return call_super(rb::raw_slice(args)); // a thread without our scheduler: CRuby's, at once
    }
    if args.len() == 1 {
        if let Some(res) = crate::fast::io::write(raw(rb_self), raw(args[0])) {
            return res;
        }
    }
    if args.len() < 2 || !coalescible(raw(rb_self)) {
        return counted(raw(rb_self), 0, || call_super(rb::raw_slice(args)));
    }
    // Strings: one writev of them all, nothing joined.
    if let Some(res) = crate::fast::io::write_pieces(raw(rb_self), args) {
        return res;
    }
    let joined = Joined::new()?;
    for arg in args {
        joined.push(as_string(raw(*arg))?)?;
    }
    // The joined String takes the fast path as one String would (puts(line) comes here too:
    // CRuby's puts calls write(line, "\n")).
    if let Some(res) = crate::fast::io::write(raw(rb_self), joined.0) {
        return res;
    }
    counted(raw(rb_self), 0, || call_super(&[joined.0]))
}

/// Whether `io.write` is CRuby's IO#write behind ours, so one write call of the whole output
/// is what CRuby's puts/print would have produced with several (a class or singleton that
/// overrides write gets CRuby's puts/print instead).
fn write_is_ours(io: VALUE) -> Result<bool, Error> {
    let module = rb::class_named("UringMachine::CoalescedWrites")?;
    let names = names();
    let write = symbol(names.write);
    // SAFETY: `io` is an IO (coalescible checked T_FILE), so its RBasic header is readable;
    // instance_method and owner are Ruby calls whose raises protect catches.
    let owner = protect(|| unsafe {
        let klass = (*(io as *const rb_sys::RBasic)).klass;
        let method = rb_sys::rb_funcall(klass, names.instance_method, 1, write);
        rb_sys::rb_funcall(method, names.owner, 0)
    })?;
    Ok(owner == module)
}

/// Whether `line` ends with "\n" in its own encoding (CRuby's rb_str_end_with_asciichar).
fn ends_with_newline(line: VALUE) -> bool {
    // SAFETY: `line` is a String: its pointer and length describe its bytes, and its encoding
    // index is one of the loaded encodings (a String carries only those), so `enc` is non-null.
    // The reads stay inside [ptr, ptr + len): len > 0, and `start` is the last character's
    // start for a fixed-width min_enc_len. rb_enc_ascget only reads; nothing here allocates.
    unsafe {
        let len = rb_sys::RSTRING_LEN(line) as usize;
        if len == 0 {
            return false;
        }
        let ptr = rb_sys::RSTRING_PTR(line) as *const u8;
        let enc = rb_sys::rb_enc_from_index(rb_sys::rb_enc_get_index(line));
        let mut n = (*enc).min_enc_len;
        if n == 1 {
            return *ptr.add(len - 1) == b'\n';
        }
        let start = ptr.add(((len - 1) / n as usize) * n as usize);
        rb_sys::rb_enc_ascget(start as *const _, ptr.add(len) as *const _, &mut n, enc) == b'\n' as i32
    }
}

/// The lines CRuby's puts writes for `objects`, appended to `out`: Strings as they are, Arrays
/// (to_ary) element by element ("[...]" for one that contains itself), anything else by to_s;
/// a newline after each line that does not end with one.
fn puts_lines(objects: &[VALUE], out: &Joined, path: &mut Vec<VALUE>) -> Result<(), Error> {
    for &obj in objects {
        let line = if rb::is_string(obj) {
            obj
        } else {
            // SAFETY: `obj` is the caller's argument; its to_ary runs under protect.
            let ary = protect(|| unsafe { rb_sys::rb_check_array_type(obj) })?;
            if ary != NIL {
                if path.contains(&ary) {
                    out.push_bytes(b"[...]\n")?;
                    continue;
                }
                path.push(ary);
                let mut i = 0;
                // The Array may change while its elements' to_s run: read it as CRuby does.
                // SAFETY: `ary` is an Array (rb_check_array_type's answer), held on this stack.
                while i < unsafe { rb_sys::RARRAY_LEN(ary) } {
                    // SAFETY: rb_ary_entry reads an element (nil past the end), no call.
                    let elem = unsafe { rb_sys::rb_ary_entry(ary, i) };
                    let res = puts_lines(&[elem], out, path);
                    if res.is_err() {
                        path.pop();
                        return res;
                    }
                    i += 1;
                }
                path.pop();
                std::hint::black_box(ary); // a to_ary result lives on this stack only
                continue;
            }
            as_string(obj)?
        };
        out.push(line)?;
        if !ends_with_newline(line) {
            out.push_bytes(b"\n")?;
        }
    }
    Ok(())
}

fn write_once(io: VALUE, joined: &Joined) -> Result<(), Error> {
    let (write, joined) = (names().write, joined.0);
    // SAFETY: `io` and the joined String are live (an argument, this stack); whatever IO#write
    // raises is caught by protect.
    protect(|| unsafe { rb_sys::rb_funcall(io, write, 1, joined) }).map(|_| ())
}

/// IO#puts(*objects): all the lines in one write when `coalescible`. (One String argument
/// needs nothing here: CRuby's puts writes it with its newline as one write(line, "\n").) If
/// an object's to_s raises, the lines before it are written first, as CRuby's would have been.
pub fn rb_puts(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    if !under_our_scheduler() {
        return call_super(rb::raw_slice(args));
    }
    let io = raw(rb_self);
    let simple = args.is_empty() || (args.len() == 1 && rb::is_string(raw(args[0])));
    if simple || !coalescible(io) || !write_is_ours(io)? {
        return counted(io, 0, || call_super(rb::raw_slice(args)));
    }
    let joined = Joined::new()?;
    let res = puts_lines(rb::raw_slice(args), &joined, &mut Vec::new());
    if !joined.is_empty() {
        write_once(io, &joined)?;
    }
    res.map(|_| rb::value(NIL))
}

/// IO#print(*objects): the objects, `$,` between them and `$\` after them, in one write when
/// `coalescible` (CRuby writes each separately). Without arguments it prints `$_`: CRuby's.
pub fn rb_print(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    if !under_our_scheduler() {
        return call_super(rb::raw_slice(args));
    }
    let io = raw(rb_self);
    let (mut fs, mut rs) = (NIL, NIL);
    // SAFETY: the names are NUL-terminated statics; reading a global may run a hooked getter,
    // whose raise protect catches.
    protect(|| unsafe {
        fs = rb_sys::rb_gv_get(c"$,".as_ptr());
        rs = rb_sys::rb_gv_get(c"$\\".as_ptr());
        NIL
    })?;
    let pieces = args.len() + usize::from(rs != NIL && !args.is_empty());
    if pieces < 2 || !coalescible(io) || !write_is_ours(io)? {
        return counted(io, 0, || call_super(rb::raw_slice(args)));
    }
    if args.len() > 1 && fs != NIL {
        let msg = c"$, is set to non-nil value";
        // SAFETY: `msg` is a static C string; the warning (Warning.warn, user code) may raise,
        // caught by protect.
        protect(|| unsafe {
            rb_sys::rb_category_warn(rb_sys::rb_warning_category_t::RB_WARN_CATEGORY_DEPRECATED, msg.as_ptr());
            NIL
        })?;
    }
    let joined = Joined::new()?;
    let mut failed = None;
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && fs != NIL && rb::is_string(fs) {
            joined.push(fs)?;
        }
        match as_string(raw(*arg)) {
            Ok(s) => joined.push(s)?,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if failed.is_none() && rs != NIL && rb::is_string(rs) {
        joined.push(rs)?;
    }
    if !joined.is_empty() {
        write_once(io, &joined)?;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(rb::value(NIL)),
    }
}
