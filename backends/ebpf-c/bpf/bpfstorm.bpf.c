// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Counts execs. One object serves every strategy: the loader turns off
 * autoload of all programs but the chosen attach point, skips creating the
 * unused maps, and sets the read-only globals below before load, so the
 * verifier prunes every branch the strategy does not take. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfstorm.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define __NR_execve 59
#define __NR_execveat 322

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} percpu_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, STORM_RINGBUF_BYTES);
} ringbuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_event_array SEC(".maps");

const volatile __u32 map_kind = STORM_MAP_ARRAY;
const volatile __u32 update_mode = STORM_UPDATE_ATOMIC;
/* 0 counts every task; otherwise only tasks in this cgroup v2. */
const volatile __u64 filter_cgroup_id = 0;

/* Events the ring or perf buffer had no room for. */
__u64 dropped = 0;

static __always_inline void bump(__u64 *slot)
{
	if (update_mode == STORM_UPDATE_ATOMIC)
		__sync_fetch_and_add(slot, 1);
	else
		*slot += 1; /* racy on shared slots, exact on per-CPU ones */
}

static __always_inline void bump_array(void *map)
{
	__u32 key = 0;
	__u64 *slot = bpf_map_lookup_elem(map, &key);

	if (slot)
		bump(slot);
}

static __always_inline void bump_hash(void *map)
{
	__u32 key = 0;
	__u64 one = 1;
	__u64 *slot = bpf_map_lookup_elem(map, &key);

	if (!slot) {
		if (bpf_map_update_elem(map, &key, &one, BPF_NOEXIST) == 0)
			return;
		/* another CPU inserted the key first */
		slot = bpf_map_lookup_elem(map, &key);
		if (!slot)
			return;
	}
	bump(slot);
}

static __always_inline void fill_event(struct storm_event *e)
{
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->cpu = bpf_get_smp_processor_id();
}

static __always_inline void count_event(void *ctx)
{
	if (filter_cgroup_id && bpf_get_current_cgroup_id() != filter_cgroup_id)
		return;

	switch (map_kind) {
	case STORM_MAP_ARRAY:
		bump_array(&array);
		break;
	case STORM_MAP_HASH:
		bump_hash(&hash);
		break;
	case STORM_MAP_PERCPU_ARRAY:
		bump_array(&percpu_array);
		break;
	case STORM_MAP_PERCPU_HASH:
		bump_hash(&percpu_hash);
		break;
	case STORM_MAP_RINGBUF: {
		struct storm_event *e = bpf_ringbuf_reserve(&ringbuf, sizeof(*e), 0);

		if (!e) {
			__sync_fetch_and_add(&dropped, 1);
			break;
		}
		fill_event(e);
		bpf_ringbuf_submit(e, 0);
		break;
	}
	case STORM_MAP_PERF_EVENT_ARRAY: {
		struct storm_event e;

		fill_event(&e);
		if (bpf_perf_event_output(ctx, &perf_event_array, BPF_F_CURRENT_CPU, &e, sizeof(e)))
			__sync_fetch_and_add(&dropped, 1);
		break;
	}
	}
}

/* A tracepoint program's return value decides whether perf events on the
 * same tracepoint see the event: 0 would hide every exec from `perf stat`
 * (and from the perf oracle), as the classic tutorial's program does. */
#define TP_PASS_TO_PERF 1

static __always_inline bool is_exec_syscall(long id)
{
	return id == __NR_execve || id == __NR_execveat;
}

SEC("tp/syscalls/sys_enter_execve")
int tp_sys_enter_execve(void *ctx)
{
	count_event(ctx);
	return TP_PASS_TO_PERF;
}

SEC("tp/syscalls/sys_enter_execveat")
int tp_sys_enter_execveat(void *ctx)
{
	count_event(ctx);
	return TP_PASS_TO_PERF;
}

SEC("tp/sched/sched_process_exec")
int tp_sched_process_exec(void *ctx)
{
	count_event(ctx);
	return TP_PASS_TO_PERF;
}

SEC("raw_tp/sys_enter")
int raw_tp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	/* sys_enter(struct pt_regs *regs, long id) */
	if (is_exec_syscall((long)ctx->args[1]))
		count_event(ctx);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(tp_btf_sys_enter, struct pt_regs *regs, long id)
{
	if (is_exec_syscall(id))
		count_event(ctx);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int raw_tp_sched_process_exec(void *ctx)
{
	count_event(ctx);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_btf_sched_process_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	count_event(ctx);
	return 0;
}

/* libc's execve(): sees only callers that go through libc's wrapper. */
SEC("uprobe/libc.so.6:execve")
int uprobe_libc_execve(void *ctx)
{
	count_event(ctx);
	return 0;
}

/* The exec syscall's entry through a BPF trampoline (needs fentry support). */
SEC("fentry/__x64_sys_execve")
int BPF_PROG(fentry_sys_execve)
{
	count_event(ctx);
	return 0;
}

SEC("fexit/__x64_sys_execve")
int BPF_PROG(fexit_sys_execve)
{
	count_event(ctx);
	return 0;
}

SEC("kprobe/__x64_sys_execve")
int kprobe_sys_execve(void *ctx)
{
	count_event(ctx);
	return 0;
}

SEC("ksyscall/execve")
int ksyscall_execve(void *ctx)
{
	count_event(ctx);
	return 0;
}

/* LSM hooks must return 0, or the exec is denied. */
SEC("lsm/bprm_check_security")
int BPF_PROG(lsm_bprm_check_security, struct linux_binprm *bprm)
{
	count_event(ctx);
	return 0;
}

SEC("lsm/bprm_committed_creds")
int BPF_PROG(lsm_bprm_committed_creds, const struct linux_binprm *bprm)
{
	count_event(ctx);
	return 0;
}
