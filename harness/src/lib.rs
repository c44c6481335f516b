//! bpfstorm: storms of execs, counted by eBPF and checked against oracles.

pub mod aggregate;
pub mod backends;
pub mod bpf_stats;
pub mod cgroup;
pub mod cli;
pub mod compare;
pub mod export;
pub mod guest;
pub mod host;
pub mod interrupt;
pub mod leaks;
pub mod measure;
pub mod neighbours;
pub mod oracle;
pub mod output;
pub mod plan;
pub mod privileges;
pub mod probe;
pub mod recommend;
pub mod run;
pub mod sample;
pub mod secure_fs;
pub mod semantics;
pub mod storm;
pub mod timestamp;
pub mod trigger;
