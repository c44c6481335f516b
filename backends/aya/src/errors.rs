//! aya errors made typed: the errno of the failed syscall, found in the
//! error's source chain, classified by [`CounterError::from_kernel`].

use std::error::Error;
use std::io;

use bpfstorm_common::{AttachPoint, CounterError, Op};

/// The whole chain, outermost first: aya's outer errors often only say
/// which step failed, the innermost says why.
pub fn chain(err: &dyn Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The errno of the first `io::Error` in the chain, 0 when there is none.
pub fn errno(err: &(dyn Error + 'static)) -> i32 {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(code) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return code;
        }
        current = e.source();
    }
    0
}

/// A failed `op` of the program for `attach`.
pub fn kernel(attach: AttachPoint, op: Op, err: &(dyn Error + 'static)) -> CounterError {
    CounterError::from_kernel(attach, op, errno(err), chain(err))
}

/// A map or buffer operation that failed after load.
pub fn map(op: &str, err: &(dyn Error + 'static)) -> CounterError {
    CounterError::Kernel {
        op: op.to_string(),
        errno: errno(err),
        message: chain(err),
    }
}

/// The backend's own machinery failed.
pub fn backend(message: impl Into<String>) -> CounterError {
    CounterError::Backend {
        backend: "aya",
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("`perf_event_open` failed")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn errno_and_message_come_from_the_source_chain() {
        let err = Outer(io::Error::from_raw_os_error(2));
        assert_eq!(errno(&err), 2);
        let text = chain(&err);
        assert!(text.starts_with("`perf_event_open` failed: "), "{text}");
        assert!(text.contains("No such file"), "{text}");
        let refused = kernel(AttachPoint::KprobeSysExecve, Op::Attach, &err);
        assert!(refused.is_unsupported(), "{refused}");
    }
}
