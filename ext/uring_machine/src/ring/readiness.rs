//! Readiness as poll(2) reports it. io_uring adds EPOLLRDHUP (the peer shut down its writing
//! side) to the events of every POLL_ADD, and a poll completes at once while that holds, even
//! with none of the requested events ready: a wait for room on a connection whose peer
//! half-closed would end at once, again and again, with RDHUP alone (and CRuby's IO#write,
//! told "not writable", raises). A poll result counts only when it carries a requested event,
//! an error or a hang-up; a wait that got RDHUP alone goes on through an epoll instance of its
//! own, whose wake-ups carry just those, as poll(2)'s do.
use super::private_fds::PrivateFd;

/// What poll(2) reports whether asked or not.
const ALWAYS: u32 = (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) as u32;

/// The events of `fd` that are ready now (POLLERR/POLLHUP/POLLNVAL included), without waiting.
pub fn poll_now(fd: i32, events: u32) -> u32 {
    let mut pfd = libc::pollfd {
        fd,
        events: events as i16,
        revents: 0,
    };
    // SAFETY: one pollfd, a local that outlives the call; timeout 0: it never waits.
    unsafe { libc::poll(&mut pfd, 1, 0) };
    pfd.revents as u16 as u32
}

/// Whether a POLL_ADD result for `events` ends the wait: an error, or a requested event, an
/// error or a hang-up ready.
pub fn answers(events: u32, res: i32) -> bool {
    res < 0 || res as u32 & (events | ALWAYS) != 0
}

/// An epoll instance that watches one descriptor for some events: a POLL_ADD of POLLIN on it
/// completes when poll(2) on the descriptor would return.
pub struct FilteredPoll(PrivateFd);

impl FilteredPoll {
    /// None when epoll cannot watch `fd` (a regular file, a closed descriptor): a plain poll
    /// of it answers at once then.
    pub fn new(fd: i32, events: u32) -> Option<FilteredPoll> {
        // SAFETY: creates a descriptor; no memory is involved.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return None;
        }
        let epoll = PrivateFd::new(epfd);
        // POLLIN/POLLPRI/POLLOUT have the values of their EPOLL twins; errors and hang-ups are
        // always reported.
        let mut event = libc::epoll_event {
            events: events & !ALWAYS,
            u64: 0,
        };
        // SAFETY: `event` is a local epoll_event that epoll_ctl reads during the call only.
        let added = unsafe { libc::epoll_ctl(epoll.raw(), libc::EPOLL_CTL_ADD, fd, &mut event) } == 0;
        added.then_some(FilteredPoll(epoll))
    }

    /// The descriptor and events to poll instead.
    pub fn target(&self) -> (i32, u32) {
        (self.0.raw(), libc::POLLIN as u32)
    }
}
