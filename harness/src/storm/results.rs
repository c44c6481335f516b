//! The counts each worker sends down the results pipe as it exits.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;

use super::reap::Workers;
use super::worker::RECORD_LEN;
use super::{sys, StormError};

/// The read end of the results pipe and the totals read from it.
pub(super) struct Results {
    pub(super) fd: OwnedFd,
    buf: [u8; RECORD_LEN * 64],
    len: usize,
    pub(super) reported: u32,
    pub(super) issued: u64,
    pub(super) succeeded: u64,
    pub(super) failed: u64,
}

impl Results {
    pub(super) fn new(fd: OwnedFd) -> Results {
        Results {
            fd,
            buf: [0; RECORD_LEN * 64],
            len: 0,
            reported: 0,
            issued: 0,
            succeeded: 0,
            failed: 0,
        }
    }

    /// Reads every record available without blocking and reaps the workers
    /// that sent them (they are exiting).
    pub(super) fn drain(&mut self, workers: &mut Workers) -> Result<(), StormError> {
        loop {
            match nix::unistd::read(self.fd.as_fd(), &mut self.buf[self.len..]) {
                Ok(0) | Err(Errno::EAGAIN) => return Ok(()),
                Ok(n) => self.len += n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys("read of the results pipe")(e)),
            }
            let whole = self.len - self.len % RECORD_LEN;
            for record in self.buf[..whole].chunks_exact(RECORD_LEN) {
                let mut v = [0u64; 4];
                for (value, bytes) in v.iter_mut().zip(record.chunks_exact(8)) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(bytes);
                    *value = u64::from_ne_bytes(word);
                }
                self.reported += 1;
                self.issued += v[1];
                self.succeeded += v[2];
                self.failed += v[3];
                // A pid that does not fit is not one of ours; reap_pid ignores it.
                workers.reap_pid(libc::pid_t::try_from(v[0]).unwrap_or(-1))?;
            }
            self.buf.copy_within(whole..self.len, 0);
            self.len -= whole;
        }
    }
}
