//! Durations given by Ruby code, converted the way CRuby converts them for the same call
//! without a scheduler, so that every odd value (NaN, negative, huge, Rational, a String, an
//! object with `divmod` or `to_f`) gets CRuby's answer. A duration that converts but lies past
//! the monotonic clock's range means "forever" (`None`): a sleep that never wakes by itself, a
//! timeout that never fires. A `Duration` can be neither negative nor NaN, and `ring_timespec`
//! clamps it to what the kernel's timespec holds: no conversion here can panic or hand the
//! ring a negative or overflowing timespec.
use std::time::{Duration, Instant};

use io_uring::types;
use magnus::{rb_sys::protect, Error};
use rb_sys::VALUE;

use crate::ruby::value::NIL;

/// Seconds as `Kernel#sleep` converts them (CRuby's `rb_time_timespec_interval`, also behind
/// `Mutex#sleep`, `IO#wait_readable`, `IO.select` and `IO#timeout=`): Integer, Float and
/// anything with `divmod` (Rational); ArgumentError when negative, RangeError for NaN,
/// Infinity and values past `time_t`, TypeError for the rest. `None`: past the clock's range.
pub fn interval(v: VALUE) -> Result<Option<Duration>, Error> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    protect(|| {
        // SAFETY: a plain CRuby call on a VALUE the caller holds; a raise is caught by protect.
        let got = unsafe { rb_sys::rb_time_timespec_interval(v) };
        ts = libc::timespec {
            tv_sec: got.tv_sec,
            tv_nsec: got.tv_nsec,
        };
        NIL
    })?;
    // CRuby checked the sign; Rational#divmod &c. may still give a nanosecond count out of range.
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    let duration = Duration::from_secs(secs).checked_add(Duration::from_nanos(nanos));
    Ok(duration.and_then(within_clock))
}

/// Seconds as `Thread#join(limit)` and `Queue#pop(timeout:)` convert them (CRuby's
/// `rb_num2dbl`: anything with `to_f`, TypeError for Strings, nil and the like): a negative
/// limit has already passed (zero), and NaN, Infinity or a value past the clock's range never
/// does (`None`).
pub fn float_seconds(v: VALUE) -> Result<Option<Duration>, Error> {
    let mut secs = 0.0;
    protect(|| {
        // SAFETY: a plain CRuby call on a VALUE the caller holds; a raise is caught by protect.
        secs = unsafe { rb_sys::rb_num2dbl(v) };
        NIL
    })?;
    Ok(from_secs_f64(secs))
}

/// Seconds as a Float becomes a wait: zero or less is no wait, NaN, Infinity or past the
/// clock's range is forever (`None`).
pub fn from_secs_f64(secs: f64) -> Option<Duration> {
    if secs.is_nan() {
        return None;
    }
    if secs <= 0.0 {
        return Some(Duration::ZERO);
    }
    Duration::try_from_secs_f64(secs).ok().and_then(within_clock)
}

/// `d`, if a deadline that far from now can be told by the monotonic clock; None otherwise.
pub fn within_clock(d: Duration) -> Option<Duration> {
    Instant::now().checked_add(d).map(|_| d)
}

/// The longest relative timeout a kernel timespec holds (its tv_sec is signed 64-bit); the
/// kernel itself saturates anything past about 292 years, so this one never fires.
pub const RING_FOREVER: Duration = Duration::from_secs(i64::MAX as u64);

/// `d` as the timespec of a TIMEOUT op: never negative, clamped to `RING_FOREVER`.
pub fn ring_timespec(d: Duration) -> types::Timespec {
    let d = d.min(RING_FOREVER);
    types::Timespec::new().sec(d.as_secs()).nsec(d.subsec_nanos())
}
