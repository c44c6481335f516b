/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The C loader's ABI: a libbpf skeleton of bpfstorm.bpf.c behind an opaque
 * handle. Every int-returning call returns 0 (or a count) on success and a
 * negative errno on failure, with a message in err[errlen] that includes
 * what libbpf logged (the verifier's last lines, for a refused load). */
#ifndef BPFSTORM_LOADER_H
#define BPFSTORM_LOADER_H

#include <stddef.h>
#include <stdint.h>

/* What to count. The program and the map are found by name, so programs
 * and maps added to bpfstorm.bpf.c need no loader change. Each program has
 * its map, update mode and filter compiled in; only the cgroup id comes
 * from here. */
struct bpfstorm_c_strategy {
	/* program name, <attach>__<map>__<update>__<filter>, e.g.
	 * "tp_sys_enter_execve__array__atomic__all" */
	const char *program;
	const char *map;	   /* map name, e.g. "array", or ".data.global" */
	uint32_t slot_stride;	   /* bytes from one slot of the count to the next */
	uint32_t value_size;	   /* the map's value size that holds them */
	uint32_t wakeup_events;	   /* perf buffer: records per wakeup of its reader */
	int32_t poll_ms;	   /* buffers: -1 to wait for wakeups, else poll this often */
	uint32_t mmap_read;	   /* read the count from its map mapped into memory */
	uint64_t filter_cgroup_id; /* for `cgroup` programs: the cgroup v2 id */
};

struct bpfstorm_c_reading {
	uint64_t count;
	/* Events the program could not hand over, as it counted them (its
	 * `dropped` global: ring buffer reserve or perf output failed). 0 for
	 * maps that are not streams. */
	uint64_t dropped;
	/* Perf buffer only: lost records the kernel wrote into the buffer, as
	 * consumed so far (a late cross-check of `dropped`). */
	uint64_t lost_records;
};

struct bpfstorm_c;

/* Opens the skeleton: only the strategy's program autoloads, only its map
 * (and the object's own .rodata/.bss) is created, the cgroup id set. A
 * global's map is its own .data.<name> section. */
int bpfstorm_c_open(const struct bpfstorm_c_strategy *strategy, struct bpfstorm_c **out,
		    char *err, size_t errlen);
/* BPF_PROG_LOAD, verifier and map creation. */
int bpfstorm_c_load(struct bpfstorm_c *c, char *err, size_t errlen);
/* Attaches the program as its SEC() says. */
int bpfstorm_c_attach(struct bpfstorm_c *c, char *err, size_t errlen);
/* For ring and perf buffers: starts the thread that counts records as they
 * come. Does nothing for other maps. */
int bpfstorm_c_start_stream(struct bpfstorm_c *c, char *err, size_t errlen);
/* The count so far, read with the BPF_MAP_LOOKUP_ELEM syscall, or with
 * `mmap_read` from the map's value mapped at load (`dropped`, from .bss,
 * for stream maps only, always by syscall). For buffers it first
 * consumes every record already submitted, on the caller's thread, so a
 * read after the events is exact. */
int bpfstorm_c_read(struct bpfstorm_c *c, struct bpfstorm_c_reading *out, char *err,
		    size_t errlen);
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
