//! Waking a buffer poller thread at once: an eventfd "doorbell" rung to stop
//! it, and an epoll set that sleeps on it together with the
//! buffers' own fds. The stream poller ([`crate::stream`]) uses it so a read
//! after a storm neither sleeps a poll interval nor misses records.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An eventfd that wakes the poller, to stop it.
pub struct Doorbell(OwnedFd);

impl Doorbell {
    pub fn new() -> io::Result<Doorbell> {
        // SAFETY: eventfd(2) with valid flags; the fd is owned right away.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us.
        Ok(Doorbell(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn ring(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our own eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

/// An epoll set watching the buffers and the doorbell.
pub struct Waiter {
    epoll: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Waiter {
    pub fn new(fds: &[RawFd]) -> io::Result<Waiter> {
        // SAFETY: epoll_create1 with a valid flag; the fd is owned right away.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us.
        let epoll = unsafe { OwnedFd::from_raw_fd(epfd) };
        for &fd in fds {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            // SAFETY: every fd is open for the waiter's whole life.
            if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Waiter {
            epoll,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; fds.len()],
        })
    }

    /// Blocks until any fd is readable, a signal interrupts, or (with a
    /// timeout) the time is up.
    pub fn wait(&mut self, timeout: Option<Duration>) {
        let timeout_ms = timeout.map_or(-1, |t| t.as_millis().try_into().unwrap_or(i32::MAX));
        // SAFETY: the kernel writes at most `events.len()` events.
        unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout_ms,
            )
        };
    }
}

impl AsRawFd for Doorbell {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
