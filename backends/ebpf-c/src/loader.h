/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The C loader's ABI: a libbpf skeleton of bpfstorm.bpf.c behind an opaque
 * handle. Every int-returning call returns 0 (or a count) on success and a
 * negative errno on failure, with a message in err[errlen] that includes
 * what libbpf logged (the verifier's last lines, for a refused load). */
#ifndef BPFSTORM_LOADER_H
#define BPFSTORM_LOADER_H

#include <stddef.h>
#include <stdint.h>

/* How a read gets the count out of its map. */
enum bpfstorm_c_read_path {
	/* BPF_MAP_LOOKUP_ELEM, one syscall per key */
	BPFSTORM_C_READ_SYSCALL = 0,
	/* loads from the map's values mapped at load (BPF_F_MMAPABLE arrays and
	 * globals only): no syscall */
	BPFSTORM_C_READ_MMAP = 1,
	/* BPF_MAP_LOOKUP_BATCH, up to BPFSTORM_C_BATCH_KEYS keys a syscall */
	BPFSTORM_C_READ_BATCH = 2,
};

/* Keys a batched read asks for at once. */
#define BPFSTORM_C_BATCH_KEYS 4096

/* What to count. The program and the map are found by name, so programs
 * and maps added to bpfstorm.bpf.c need no loader change. Each program has
 * its map, update mode, filter and keying compiled in; only the cgroup id
 * and the number of keys come from here. */
struct bpfstorm_c_strategy {
	/* program name, <attach>__<map>__<update>__<filter>[__keyed], e.g.
	 * "tp_sys_enter_execve__array__atomic__all" */
	const char *program;
	const char *map;	   /* map name, e.g. "array", or ".data.global" */
	uint32_t slot_stride;	   /* bytes from one slot of the count to the next */
	uint32_t value_size;	   /* the map's value size that holds them */
	uint32_t wakeup_events;	   /* perf buffer: records per wakeup of its reader */
	int32_t poll_ms;	   /* buffers: -1 to wait for wakeups, else poll this often */
	uint32_t read_path;	   /* enum bpfstorm_c_read_path */
	/* Keys the count is spread over (the program's `key_count`): 1 is the
	 * classic single key 0, more needs a `__keyed` program. */
	uint32_t key_count;
	/* Entries of the count's map: 0 keeps the object's own, anything else
	 * is set before load. */
	uint32_t max_entries;
	uint64_t filter_cgroup_id; /* for `cgroup` programs: the cgroup v2 id */
};

struct bpfstorm_c_reading {
	/* The count, summed over its keys (and per-CPU slots). */
	uint64_t count;
	/* Events the program could not count, as it counted them (its
	 * `dropped` global: ring buffer reserve or perf output failed, or a
	 * keyed program found no slot). 0 for a count at a single key. */
	uint64_t dropped;
	/* Perf buffer only: lost records the kernel wrote into the buffer, as
	 * consumed so far (a late cross-check of `dropped`). */
	uint64_t lost_records;
	/* Keys whose summed count is not zero; 0 for buffers. */
	uint64_t keys_live;
};

struct bpfstorm_c;

/* Opens the skeleton: only the strategy's program autoloads, only its map
 * (and the object's own .rodata/.bss) is created, the cgroup id and the
 * number of keys set, the map resized where asked. A global's map is its
 * own .data.<name> section. The buffers a read needs are allocated here. */
int bpfstorm_c_open(const struct bpfstorm_c_strategy *strategy, struct bpfstorm_c **out,
		    char *err, size_t errlen);
/* BPF_PROG_LOAD, verifier and map creation. */
int bpfstorm_c_load(struct bpfstorm_c *c, char *err, size_t errlen);
/* Attaches the program as its SEC() says. */
int bpfstorm_c_attach(struct bpfstorm_c *c, char *err, size_t errlen);
/* For ring and perf buffers: starts the thread that counts records as they
 * come. Does nothing for other maps. */
int bpfstorm_c_start_stream(struct bpfstorm_c *c, char *err, size_t errlen);
/* The count so far, summed over keys 0..key_count (for an array, those
 * it has entries for) by the strategy's read path; a hash's missing key
 * counts 0. `dropped` comes from .bss by syscall, for buffers and keyed
 * counts only. For buffers it first consumes every record already
 * submitted, on the caller's thread, so a read after the events is exact.
 * Allocates nothing: its buffers are made at open. */
int bpfstorm_c_read(struct bpfstorm_c *c, struct bpfstorm_c_reading *out, char *err,
		    size_t errlen);
/* Sets the count back to zero: deletes a keyed hash's keys (so a full map
 * is empty again), else writes zeros to every key; zeroes `dropped` for
 * buffers and keyed counts. */
int bpfstorm_c_reset(struct bpfstorm_c *c, char *err, size_t errlen);
/* The loaded program's fd, for its run statistics (fdinfo, prog info). */
int bpfstorm_c_prog_fd(const struct bpfstorm_c *c);
/* Writes the fds of every map the object created (up to n) and returns how
 * many there are: what the kernel charges for this counter. */
int bpfstorm_c_map_fds(const struct bpfstorm_c *c, int *fds, size_t n);
/* Stops the buffer thread, detaches, unloads and frees. NULL is fine. */
void bpfstorm_c_destroy(struct bpfstorm_c *c);

/* libbpf's version string, from the libbpf this code is linked with. */
const char *bpfstorm_c_libbpf_version(void);
/* The libbpf version of the headers this code was compiled against. */
const char *bpfstorm_c_libbpf_headers_version(void);

/* The tutorial's program: loads the strategy, prints the count every
 * interval_ms until SIGINT or SIGTERM, then cleans up and returns 0. */
int bpfstorm_c_counter_loop(const struct bpfstorm_c_strategy *strategy, unsigned int interval_ms,
			    char *err, size_t errlen);

#endif /* BPFSTORM_LOADER_H */
