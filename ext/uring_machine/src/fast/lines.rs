//! The IO fast path for the buffered read methods of UringMachine::FastIO: gets, readline,
//! each_line, readlines, getc, readchar, getbyte, readbyte, eof?/eof. They read through the
//! IO's read-ahead buffer; when it is empty, fast/fill.rs fills it with a direct read and then
//! CRuby's own method runs (`super`) and finds the bytes there: separators, limits, chomp,
//! paragraph mode, encodings, lineno, $_ and ungetc are CRuby's. At EOF the answer is given here
//! where it is exactly CRuby's (a second read(2) at EOF is not always 0 again); it changes nothing
//! but $_ (nil), as CRuby's does.
//!
//! CRuby's each_line and readlines loop over its getline inside io.c, filling rbuf through the
//! hooks on each turn, so they loop here: fill, then one CRuby getline per turn. That is
//! rb_io_gets (io.c's getline without $_) for the default separator, else the original IO#gets
//! with the arguments each_line validated, with $_ put back after it (each_line sets no $_).
use std::os::raw::c_int;
use std::sync::OnceLock;

use magnus::{rb_sys::protect, Error, Value};
use rb_sys::{ID, VALUE};

use crate::fast::coalesce::under_our_scheduler;
use crate::fast::fill::{fill, may_fill, Fill};
use crate::ruby::io_stream::open_fptr;
use crate::ruby::names::{names, symbol};
use crate::ruby::value::{self as rb, raw, NIL};

/// CRuby's IO#gets as defined before FastIO was prepended, and bind_call.
struct Originals {
    gets: VALUE,
    bind_call: ID,
}

static ORIGINALS: OnceLock<Originals> = OnceLock::new();

/// Keeps IO's own gets (call before FastIO is prepended to IO).
pub fn remember_originals() -> Result<(), Error> {
    let names = names();
    let gets = symbol(names.gets);
    // SAFETY: rb_cIO is set at boot; instance_method is a Ruby call and registering the
    // UnboundMethod as a mark root allocates: what either raises protect catches. A registered
    // root is never freed nor moved, so its VALUE may live in a static.
    let gets = protect(|| unsafe {
        let m = rb_sys::rb_funcall(rb_sys::rb_cIO, names.instance_method, 1, gets);
        rb_sys::rb_gc_register_mark_object(m);
        m
    })?;
    let originals = Originals {
        gets,
        bind_call: names.bind_call,
    };
    let _ = ORIGINALS.set(originals);
    Ok(())
}

fn originals() -> &'static Originals {
    ORIGINALS.get().expect("remember_originals ran at load")
}

/// CRuby's method with the caller's arguments, keywords (rb_call_super drops them) and block.
fn super_(args: &[Value]) -> Result<Value, Error> {
    // SAFETY: rb_keyword_given_p only reads the current frame (the FastIO method's, called
    // from Ruby with the GVL); it allocates nothing and cannot raise.
    let kw = unsafe { rb_sys::rb_keyword_given_p() };
    let argv = rb::raw_slice(args);
    // SAFETY: called from a FastIO method, so IO's method is its super; `argv` outlives the
    // call; whatever it raises is caught by protect.
    protect(|| unsafe { rb_sys::rb_call_super_kw(argv.len() as c_int, argv.as_ptr(), kw) }).map(rb::value)
}

/// IO's own gets: `gets.bind_call(io, *args)`, keywords passed as keywords.
fn original_gets(io: VALUE, args: &[VALUE], keywords: bool) -> Result<VALUE, Error> {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(io);
    argv.extend_from_slice(args);
    let originals = originals();
    // SAFETY: `gets` is IO#gets' UnboundMethod (a registered mark root), `argv` (the IO and
    // the arguments, all live) outlives the call; whatever gets raises is caught by protect.
    protect(|| unsafe {
        rb_sys::rb_funcallv_kw(
            originals.gets,
            originals.bind_call,
            argv.len() as c_int,
            argv.as_ptr(),
            keywords as c_int,
        )
    })
}

/// A line method's arguments (sep, limit, chomp:) when CRuby takes them as they are and raises
/// nothing before reading.
struct LineArgs {
    /// The separator (String or nil): `$/` when none was given.
    rs: VALUE,
    /// nil or a non-zero Fixnum.
    limit: VALUE,
    /// The keyword Hash ({} or {chomp:}), or nil.
    keywords: VALUE,
    chomp: bool,
}

impl LineArgs {
    /// None for every other shape: an argument that needs to_str/to_int, a Bignum, a limit of 0
    /// (gets answers "" without reading; each_line and readlines raise), keywords other than
    /// chomp (readline raises), a separator whose encoding CRuby rejects ("encoding mismatch"),
    /// an IO whose read encoding is not ASCII-compatible (4.0 can raise "broken separator").
    fn parse(io: VALUE, args: &[Value]) -> Option<LineArgs> {
        let mut args = rb::raw_slice(args).to_vec();
        let mut keywords = NIL;
        let mut chomp = false;
        // SAFETY: rb_keyword_given_p only reads the current frame (the IO method's, called
        // from Ruby with the GVL); it allocates nothing and cannot raise.
        if unsafe { rb_sys::rb_keyword_given_p() } != 0 {
            keywords = args.pop()?;
            if rb::is_special(keywords) || rb::type_of(keywords) != rb_sys::ruby_value_type::RUBY_T_HASH {
                return None;
            }
            // SAFETY: `keywords` is a Hash (checked above); its size is a field read.
            let size = unsafe { rb_sys::rb_hash_size_num(keywords) };
            if size > 1 {
                return None;
            }
            if size == 1 {
                let undef = rb_sys::Qundef as VALUE;
                let chomp_key = symbol(names().chomp);
                // SAFETY: `keywords` is a Hash; comparing :chomp with a key of another kind may
                // call that key's #eql?, whose raise protect catches (CRuby's method takes the
                // call then, and raises it itself).
                let value = protect(|| unsafe { rb_sys::rb_hash_lookup2(keywords, chomp_key, undef) }).ok()?;
                if value == undef {
                    return None;
                }
                chomp = rb::truthy(value);
            }
        }
        let sep = |v: VALUE| v == NIL || rb::is_string(v);
        #[allow(deprecated)] // $/ (rb_rs) is what io.c reads
        // SAFETY: rb_rs is $/'s storage, a global VALUE CRuby keeps (and marks); a plain load.
        let default_rs = unsafe { rb_sys::rb_rs };
        let (rs, limit) = match args[..] {
            [] => (default_rs, NIL),
            [a] if sep(a) => (a, NIL),
            [a] if rb::is_fixnum(a) => (default_rs, a),
            [a, b] if sep(a) && (b == NIL || rb::is_fixnum(b)) => (a, b),
            _ => return None,
        };
        if limit != NIL && rb::fixnum_value(limit) == 0 {
            return None;
        }
        separator_fits(io, rs).then_some(LineArgs {
            rs,
            limit,
            keywords,
            chomp,
        })
    }

    /// The arguments for IO#gets: (sep, limit) and the keywords.
    fn gets_args(&self) -> Vec<VALUE> {
        let mut args = vec![self.rs, self.limit];
        if self.keywords != NIL {
            args.push(self.keywords);
        }
        args
    }

    /// rb_io_gets reads exactly this line: default separator, no limit, no chomp.
    fn is_default(&self) -> bool {
        // SAFETY: rb_default_rs is the frozen "\n" CRuby sets at boot; a plain load.
        self.rs == unsafe { rb_sys::rb_default_rs } && self.limit == NIL && !self.chomp
    }
}

/// Whether io.c's check_getline_args accepts `rs` unchanged for `io`: its read encoding is
/// ASCII-compatible and `rs` is nil, in that encoding, or ASCII only.
fn separator_fits(io: VALUE, rs: VALUE) -> bool {
    let Some(fptr) = open_fptr(io) else {
        return false;
    };
    // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO); the default external encoding
    // is set at boot, and encodings are never freed. rb_enc_dummy_p and rb_enc_get read
    // fields; rb_enc_str_coderange may scan `rs` (a String, checked by parse) and cache the
    // answer in its flags, which CRuby does on frozen Strings too. Nothing here allocates or
    // raises.
    unsafe {
        let enc = if (*fptr).encs.enc.is_null() {
            rb_sys::rb_default_external_encoding()
        } else {
            (*fptr).encs.enc
        };
        let ascii_compatible = (*enc).min_enc_len == 1 && rb_sys::rb_enc_dummy_p(enc) == 0;
        if !ascii_compatible {
            return false;
        }
        rs == NIL
            || std::ptr::eq(rb_sys::rb_enc_get(rs), enc)
            || rb_sys::rb_enc_str_coderange(rs) == rb_sys::ruby_coderange_type::RUBY_ENC_CODERANGE_7BIT as c_int
    }
}

/// IO#gets(sep = $/, limit = nil, chomp: false)
pub fn rb_gets(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    let io = raw(rb_self);
    if under_our_scheduler() && LineArgs::parse(io, args).is_some() {
        if let Fill::Eof = fill(io)? {
            set_lastline(NIL)?;
            return Ok(rb::value(NIL));
        }
    }
    super_(args)
}

/// IO#readline(sep = $/, limit = nil, chomp: false)
pub fn rb_readline(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    let io = raw(rb_self);
    if under_our_scheduler() && LineArgs::parse(io, args).is_some() {
        if let Fill::Eof = fill(io)? {
            set_lastline(NIL)?;
            return eof_error();
        }
    }
    super_(args)
}

/// IO#each_line(sep = $/, limit = nil, chomp: false) { |line| }
pub fn rb_each_line(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    let io = raw(rb_self);
    // SAFETY: rb_block_given_p only reads the current frame (this method's); it cannot raise.
    if unsafe { rb_sys::rb_block_given_p() } == 0 {
        return super_(args); // the Enumerator
    }
    let line_args = LineArgs::parse(io, args).filter(|_| may_fill(io));
    let Some(line_args) = line_args else {
        return super_(args);
    };
    loop {
        let line = next_line(io, &line_args)?;
        if line == NIL {
            return Ok(rb_self);
        }
        // SAFETY: each_line was given a block (checked above); `line` is a live String on this
        // stack; what the block raises, breaks or throws is caught by protect.
        protect(|| unsafe { rb_sys::rb_yield(line) })?;
    }
}

/// IO#readlines(sep = $/, limit = nil, chomp: false)
pub fn rb_readlines(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    let io = raw(rb_self);
    let Some(line_args) = LineArgs::parse(io, args).filter(|_| may_fill(io)) else {
        return super_(args);
    };
    let lines = rb::ary_new_capa(0)?;
    loop {
        let line = next_line(io, &line_args)?;
        if line == NIL {
            return Ok(rb::value(lines));
        }
        rb::ary_push(lines, line)?;
    }
}

/// One turn of io.c's each_line loop (rb_io_getline_1 with the arguments prepared once): nil at
/// EOF; no $_. Not exact in one corner: IO's own gets checks the separator's encoding against
/// the IO's on each call, io.c's loop once, so a block that switches the IO to an encoding that
/// rejects a non-ASCII separator gets ArgumentError here where CRuby's loop reads on.
fn next_line(io: VALUE, args: &LineArgs) -> Result<VALUE, Error> {
    if let Fill::Eof = fill(io)? {
        return Ok(NIL);
    }
    if args.is_default() {
        // SAFETY: `io` is the live receiver; rb_io_gets raises (closed, EOF errors, no memory)
        // only through protect.
        return protect(|| unsafe { rb_sys::rb_io_gets(io) });
    }
    // SAFETY: rb_lastline_get reads $_ of the calling Ruby frame (nil when it has none); it
    // allocates nothing and cannot raise.
    let saved = unsafe { rb_sys::rb_lastline_get() };
    let line = original_gets(io, &args.gets_args(), args.keywords != NIL)?;
    set_lastline(saved)?;
    Ok(line)
}

/// Sets $_ of the calling Ruby frame (protect adds no frame): the first $_ of a frame allocates
/// its special-variable store, which may raise NoMemoryError.
fn set_lastline(line: VALUE) -> Result<(), Error> {
    // SAFETY: `line` is nil or a String held by the caller; what rb_lastline_set raises is
    // caught by protect.
    protect(|| unsafe {
        rb_sys::rb_lastline_set(line);
        NIL
    })
    .map(|_| ())
}

fn eof_error() -> Result<Value, Error> {
    // SAFETY: rb_eof_error raises EOFError, caught by protect.
    protect(|| unsafe { rb_sys::rb_eof_error() })?;
    unreachable!("rb_eof_error raises")
}

/// A no-argument reader: fill, then CRuby's method; `at_eof` answers where the read found EOF.
fn filled_then_super(rb_self: Value, args: &[Value], at_eof: fn() -> Result<Value, Error>) -> Result<Value, Error> {
    if args.is_empty() && under_our_scheduler() {
        if let Fill::Eof = fill(raw(rb_self))? {
            return at_eof();
        }
    }
    super_(args)
}

fn nil() -> Result<Value, Error> {
    Ok(rb::value(NIL))
}

fn true_() -> Result<Value, Error> {
    Ok(rb::value(rb::TRUE))
}

/// IO#getc: nil at EOF.
pub fn rb_getc(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    filled_then_super(rb_self, args, nil)
}

/// IO#readchar: EOFError at EOF.
pub fn rb_readchar(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    filled_then_super(rb_self, args, eof_error)
}

/// IO#getbyte: nil at EOF.
pub fn rb_getbyte(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    filled_then_super(rb_self, args, nil)
}

/// IO#readbyte: EOFError at EOF.
pub fn rb_readbyte(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    filled_then_super(rb_self, args, eof_error)
}

/// IO#eof? / IO#eof: true at EOF (false when the fill found bytes: CRuby's method sees them).
pub fn rb_eof(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    filled_then_super(rb_self, args, true_)
}
