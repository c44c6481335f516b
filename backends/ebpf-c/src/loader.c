// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The C loader: open -> configure -> load -> attach -> read, on the
 * skeleton bpftool generates from bpfstorm.bpf.c at build time. Programs
 * and maps are picked by name and read by map type, so the object can grow
 * without touching this file. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* The skeleton's .data.global_percpu holds bpfstorm.h's struct storm_slot. */
#include "bpfstorm.h"
#include "bpfstorm.skel.h"
#include "loader.h"

/* Perf buffer size per CPU, in pages: the same as the libbpf-rs backend. */
#define PERF_PAGES 64
/* How much of libbpf's log an error keeps, and how many of its last lines
 * end up in the message (the verifier's last lines say why). */
#define LOG_BYTES 16384
#define LOG_TAIL_LINES 6

/* ---- libbpf's log, captured per call ------------------------------------
 * libbpf_set_print is process-global and the libbpf-rs backend sets it too
 * (same libbpf). Ours is installed only for the duration of one call and
 * the previous one restored; while installed, messages from other threads
 * go to the previous one, so each side keeps its own log. */

struct capture {
	char buf[LOG_BYTES];
	size_t len;
};

static __thread struct capture *capturing;
static libbpf_print_fn_t outer_print;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static void capture_append(struct capture *cap, const char *text, size_t n)
{
	if (n >= LOG_BYTES) {
		text += n - (LOG_BYTES - 1);
		n = LOG_BYTES - 1;
	}
	if (cap->len + n >= LOG_BYTES) {
		size_t drop = cap->len + n - (LOG_BYTES - 1);

		memmove(cap->buf, cap->buf + drop, cap->len - drop);
		cap->len -= drop;
	}
	memcpy(cap->buf + cap->len, text, n);
	cap->len += n;
	cap->buf[cap->len] = '\0';
}

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	struct capture *cap = capturing;
	va_list copy;
	char *text;
	int n;

	if (!cap)
		return outer_print ? outer_print(level, fmt, args) : 0;
	if (level == LIBBPF_DEBUG)
		return 0;
	/* One message can hold a whole verifier log: size it, keep its tail. */
	va_copy(copy, args);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n <= 0)
		return n;
	text = malloc(n + 1);
	if (!text)
		return -ENOMEM;
	vsnprintf(text, n + 1, fmt, args);
	capture_append(cap, text, n);
	free(text);
	return n;
}

static void capture_begin(struct capture *cap)
{
	cap->len = 0;
	cap->buf[0] = '\0';
	pthread_mutex_lock(&print_lock);
	outer_print = libbpf_set_print(capture_print);
	capturing = cap;
}

static void capture_end(void)
{
	capturing = NULL;
	libbpf_set_print(outer_print);
	pthread_mutex_unlock(&print_lock);
}

/* ---- errors: "<what>: <strerror>; libbpf: <last lines, | separated>" ---- */

static void err_append(char *err, size_t errlen, size_t *off, const char *text, size_t n)
{
	if (*off + 1 >= errlen)
		return;
	if (n > errlen - 1 - *off)
		n = errlen - 1 - *off;
	memcpy(err + *off, text, n);
	*off += n;
	err[*off] = '\0';
}

static void err_append_log(char *err, size_t errlen, size_t *off, const struct capture *cap)
{
	/* The last LOG_TAIL_LINES non-empty lines, as a ring of (start, length). */
	const char *tail[LOG_TAIL_LINES], *line = cap->buf, *end = cap->buf + cap->len, *eol;
	size_t len[LOG_TAIL_LINES];
	int lines = 0, i;

	for (; line < end; line = eol + 1) {
		eol = memchr(line, '\n', end - line);
		if (!eol)
			eol = end;
		/* libbpf's "raise RLIMIT_MEMLOCK / ulimit -l" hints mislead where
		 * BPF memory is charged to memory cgroups (Linux >= 5.11). */
		if (eol == line || memmem(line, eol - line, "RLIMIT_MEMLOCK", 14) ||
		    memmem(line, eol - line, "ulimit", 6))
			continue;
		tail[lines % LOG_TAIL_LINES] = line;
		len[lines % LOG_TAIL_LINES] = eol - line;
		lines++;
	}
	if (!lines)
		return;
	err_append(err, errlen, off, "; libbpf: ", 10);
	for (i = lines > LOG_TAIL_LINES ? lines - LOG_TAIL_LINES : 0; i < lines; i++) {
		err_append(err, errlen, off, tail[i % LOG_TAIL_LINES], len[i % LOG_TAIL_LINES]);
		if (i + 1 < lines)
			err_append(err, errlen, off, " | ", 3);
	}
}

/* Writes the message for `error` (a negative errno) and returns it. */
__attribute__((format(printf, 5, 6))) static int fail(char *err, size_t errlen, int error,
						      const struct capture *cap, const char *fmt, ...)
{
	const char *why = strerror(-error);
	size_t off = 0;
	va_list args;
	int n;

	if (!err || !errlen)
		return error;
	va_start(args, fmt);
	n = vsnprintf(err, errlen, fmt, args);
	va_end(args);
	off = n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
	err[off] = '\0';
	err_append(err, errlen, &off, ": ", 2);
	err_append(err, errlen, &off, why, strlen(why));
	if (cap)
		err_append_log(err, errlen, &off, cap);
	return error;
}

/* ---- ring and perf buffers, counted in user space ------------------------
 * A poller thread consumes records as they come, so the buffer does not
 * fill during a storm. A read consumes under the same lock, from the
 * caller's thread: everything submitted so far is counted, with no
 * hand-off and no poll interval to wait out. */

struct stream {
	struct ring_buffer *ring;
	struct perf_buffer *perf;
	/* One consumer at a time (libbpf's buffers are not thread-safe); it
	 * also guards the counts, which the callbacks bump while consuming. */
	pthread_mutex_t lock;
	uint64_t records;
	uint64_t lost;
	int epfd;
	/* eventfd that tells the poller to stop */
	int doorbell;
	/* epoll_wait's timeout: -1, or a poll interval for a reader never woken */
	int poll_ms;
	pthread_t thread;
	bool running;
};

struct bpfstorm_c {
	struct bpfstorm *skel;
	struct bpf_program *prog;
	struct bpf_map *map;
	struct bpf_link *link;
	/* Perf buffer: records per wakeup of its reader. */
	uint32_t wakeup_events;
	/* The count's slots, `stride` bytes apart in the map's value: one per
	 * possible CPU for per-CPU maps, as many as the value holds for a
	 * global (one, or a cache line per CPU). */
	int nslots;
	size_t stride;
	/* Bytes of one key's value as a lookup returns it (per-CPU: a slot
	 * per possible CPU), and room for one, for lookups and resets. */
	size_t value_bytes;
	unsigned char *value;
	/* The program's key_count (1: the classic key 0), and the keys a read
	 * sums: all of them for a hash, those it has entries for in an array. */
	uint32_t key_count;
	uint32_t nkeys;
	/* Spread over keys: `dropped` counts events that found no slot. */
	bool keyed;
	/* A keyed hash: a reset deletes its keys, so a full map empties. */
	bool resets_by_delete;
	enum bpfstorm_c_read_path read_path;
	/* BPFSTORM_C_READ_BATCH: room for one batch of keys and their values. */
	uint32_t batch_keys;
	__u32 *keys;
	unsigned char *values;
	/* BPFSTORM_C_READ_MMAP: the count's map mapped read-only at load, and
	 * the bytes from one key's value to the next there. */
	void *mapped;
	size_t mapped_bytes;
	size_t entry_bytes;
	struct stream stream;
};

static int on_ring_record(void *ctx, void *data, size_t size)
{
	struct stream *st = ctx;

	(void)data;
	(void)size;
	st->records++;
	return 0;
}

static void on_perf_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct stream *st = ctx;

	(void)cpu;
	(void)data;
	(void)size;
	st->records++;
}

static void on_perf_lost(void *ctx, int cpu, __u64 count)
{
	struct stream *st = ctx;

	(void)cpu;
	st->lost += count;
}

/* Called with st->lock held. */
static int stream_consume(struct stream *st)
{
	int e = st->ring ? ring_buffer__consume(st->ring) : perf_buffer__consume(st->perf);

	return e < 0 ? e : 0;
}

static void *stream_poll(void *arg)
{
	struct stream *st = arg;
	struct epoll_event events[2];
	int i, n;

	for (;;) {
		n = epoll_wait(st->epfd, events, 2, st->poll_ms);
		if (n < 0 && errno != EINTR)
			return NULL; /* reads still consume for themselves */
		for (i = 0; i < n; i++)
			if (events[i].data.fd == st->doorbell)
				return NULL;
		pthread_mutex_lock(&st->lock);
		/* An error here would only repeat; the next read reports it. */
		stream_consume(st);
		pthread_mutex_unlock(&st->lock);
	}
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void stream_stop(struct stream *st)
{
	uint64_t one = 1;

	if (st->running && write(st->doorbell, &one, sizeof(one)) == sizeof(one))
		pthread_join(st->thread, NULL);
	st->running = false;
	ring_buffer__free(st->ring);
	perf_buffer__free(st->perf);
	st->ring = NULL;
	st->perf = NULL;
	if (st->epfd >= 0)
		close(st->epfd);
	if (st->doorbell >= 0)
		close(st->doorbell);
	st->epfd = st->doorbell = -1;
}

/* ---- the ABI ------------------------------------------------------------- */

/* The kernel's per-CPU map types that can hold a count at a u32 key. */
static bool is_per_cpu(const struct bpf_map *map)
{
	switch (bpf_map__type(map)) {
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return true;
	default:
		return false;
	}
}

/* The hash kinds: a key is inserted on its first event, and can be
 * refused (a full map) or push another out (LRU). */
static bool inserts_keys(const struct bpf_map *map)
{
	switch (bpf_map__type(map)) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return true;
	default:
		return false;
	}
}

static bool is_stream(const struct bpf_map *map)
{
	enum bpf_map_type type = bpf_map__type(map);

	return type == BPF_MAP_TYPE_RINGBUF || type == BPF_MAP_TYPE_PERF_EVENT_ARRAY;
}

int bpfstorm_c_open(const struct bpfstorm_c_strategy *strategy, struct bpfstorm_c **out,
		    char *err, size_t errlen)
{
	struct capture cap;
	struct bpfstorm_c *c;
	struct bpf_program *prog;
	struct bpf_map *map;
	int e = 0;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return fail(err, errlen, -ENOMEM, NULL, "allocating the loader");
	c->stream.epfd = c->stream.doorbell = -1;
	pthread_mutex_init(&c->stream.lock, NULL);

	capture_begin(&cap);
	c->skel = bpfstorm__open();
	if (!c->skel)
		e = -errno;
	capture_end();
	if (e) {
		fail(err, errlen, e, &cap, "bpfstorm__open");
		goto out;
	}

	/* A program that fails to load fails the whole object: load only ours. */
	bpf_object__for_each_program(prog, c->skel->obj) {
		bool chosen = strcmp(bpf_program__name(prog), strategy->program) == 0;

		if (chosen)
			c->prog = prog;
		e = bpf_program__set_autoload(prog, chosen);
		if (e) {
			fail(err, errlen, e, NULL, "autoload of %s", bpf_program__name(prog));
			goto out;
		}
	}
	/* Create only our map, plus the object's own globals (.rodata, .bss);
	 * a global counter's own section (.data.<name>) only when it is ours. */
	bpf_object__for_each_map(map, c->skel->obj) {
		const char *name = bpf_map__name(map);
		bool chosen = strcmp(name, strategy->map) == 0;

		if (chosen)
			c->map = map;
		/* libbpf names those two <object>.rodata and <object>.bss, and a
		 * custom section after itself. */
		if (bpf_map__is_internal(map) && strncmp(name, ".data.", 6) != 0)
			continue;
		e = bpf_map__set_autocreate(map, chosen);
		if (e) {
			fail(err, errlen, e, NULL, "autocreate of %s", bpf_map__name(map));
			goto out;
		}
	}
	if (!c->prog) {
		e = fail(err, errlen, -ENOENT, NULL, "bpfstorm.bpf.c has no program named `%s`",
			 strategy->program);
		goto out;
	}
	if (!c->map) {
		e = fail(err, errlen, -ENOENT, NULL, "bpfstorm.bpf.c has no map named `%s`",
			 strategy->map);
		goto out;
	}

	if (strategy->key_count == 0) {
		e = fail(err, errlen, -EINVAL, NULL, "%s: a count needs at least one key",
			 strategy->program);
		goto out;
	}
	switch (strategy->read_path) {
	case BPFSTORM_C_READ_SYSCALL:
	case BPFSTORM_C_READ_MMAP:
	case BPFSTORM_C_READ_BATCH:
		c->read_path = strategy->read_path;
		break;
	default:
		e = fail(err, errlen, -EINVAL, NULL, "unknown read path %u", strategy->read_path);
		goto out;
	}

	/* The run-time values: only `cgroup` programs read the first, only
	 * `keyed` ones the second. */
	c->skel->rodata->filter_cgroup_id = strategy->filter_cgroup_id;
	c->skel->rodata->key_count = strategy->key_count;
	c->key_count = strategy->key_count;
	c->keyed = strategy->key_count > 1;
	c->wakeup_events = strategy->wakeup_events;
	c->stream.poll_ms = strategy->poll_ms;
	if (strategy->max_entries) {
		e = bpf_map__set_max_entries(c->map, strategy->max_entries);
		if (e) {
			fail(err, errlen, e, NULL, "giving %s %u entries", strategy->map,
			     strategy->max_entries);
			goto out;
		}
	}
	/* libbpf creates a global's section mappable itself; an array map is
	 * mappable only when asked before load. */
	if (c->read_path == BPFSTORM_C_READ_MMAP && !bpf_map__is_internal(c->map)) {
		e = bpf_map__set_map_flags(c->map, bpf_map__map_flags(c->map) | BPF_F_MMAPABLE);
		if (e) {
			fail(err, errlen, e, NULL, "making %s mappable", strategy->map);
			goto out;
		}
	}

	if (is_stream(c->map))
		goto out; /* counted in user space: no slots */
	if (is_per_cpu(c->map)) {
		c->nslots = libbpf_num_possible_cpus();
		c->stride = sizeof(uint64_t);
		c->value_bytes = c->nslots > 0 ? c->nslots * c->stride : 0;
	} else {
		c->stride = strategy->slot_stride;
		c->value_bytes = bpf_map__value_size(c->map);
		c->nslots = c->stride ? c->value_bytes / c->stride : 0;
	}
	if (bpf_map__value_size(c->map) != strategy->value_size || c->nslots <= 0 ||
	    c->stride < sizeof(uint64_t)) {
		e = fail(err, errlen, c->nslots < 0 ? c->nslots : -EINVAL, NULL,
			 "the count's slots in %s: %u-byte values, %u expected", strategy->map,
			 bpf_map__value_size(c->map), strategy->value_size);
		goto out;
	}
	/* An array has no keys past its entries; a hash is asked for all. */
	c->nkeys = c->key_count;
	if (!inserts_keys(c->map) && c->nkeys > bpf_map__max_entries(c->map))
		c->nkeys = bpf_map__max_entries(c->map);
	c->resets_by_delete = c->keyed && inserts_keys(c->map);
	/* A mapped array's values lie one after another, each 8-aligned. */
	c->entry_bytes = (c->value_bytes + 7) / 8 * 8;
	c->value = calloc(1, c->value_bytes);
	if (!c->value) {
		e = fail(err, errlen, -ENOMEM, NULL, "allocating the count's slots");
		goto out;
	}
	if (c->read_path == BPFSTORM_C_READ_BATCH) {
		/* A batch holds each value as a lookup returns it: value_bytes. */
		c->batch_keys = c->nkeys < 1 ? 1 :
				c->nkeys > BPFSTORM_C_BATCH_KEYS ? BPFSTORM_C_BATCH_KEYS :
								   c->nkeys;
		c->keys = calloc(c->batch_keys, sizeof(*c->keys));
		c->values = calloc(c->batch_keys, c->value_bytes);
		if (!c->keys || !c->values) {
			e = fail(err, errlen, -ENOMEM, NULL, "allocating a batch of %u keys",
				 c->batch_keys);
			goto out;
		}
	}
out:
	if (e) {
		bpfstorm_c_destroy(c);
		return e;
	}
	*out = c;
	return 0;
}

int bpfstorm_c_load(struct bpfstorm_c *c, char *err, size_t errlen)
{
	struct capture cap;
	int e;

	long page = sysconf(_SC_PAGESIZE);

	capture_begin(&cap);
	e = bpfstorm__load(c->skel);
	capture_end();
	if (e)
		return fail(err, errlen, e, &cap, "bpfstorm__load");
	if (c->read_path != BPFSTORM_C_READ_MMAP || is_stream(c->map))
		return 0;
	/* Every key read: the mapping never reaches past the map's values. */
	c->mapped_bytes = (c->entry_bytes * c->nkeys + page - 1) / page * page;
	c->mapped = mmap(NULL, c->mapped_bytes, PROT_READ, MAP_SHARED, bpf_map__fd(c->map), 0);
	if (c->mapped == MAP_FAILED) {
		c->mapped = NULL;
		return fail(err, errlen, -errno, NULL, "mmap of %s", bpf_map__name(c->map));
	}
	return 0;
}

int bpfstorm_c_attach(struct bpfstorm_c *c, char *err, size_t errlen)
{
	struct capture cap;
	int e = 0;

	capture_begin(&cap);
	/* Attaches as SEC() says: tracepoint, raw tracepoint, tp_btf... */
	c->link = bpf_program__attach(c->prog);
	if (!c->link)
		e = -errno;
	capture_end();
	return e ? fail(err, errlen, e, &cap, "bpf_program__attach") : 0;
}

int bpfstorm_c_start_stream(struct bpfstorm_c *c, char *err, size_t errlen)
{
	struct stream *st = &c->stream;
	int fd = bpf_map__fd(c->map), buffer_epfd, e = 0;
	/* sample_period is also the perf event's wakeup_events. */
	LIBBPF_OPTS(perf_buffer_opts, perf_opts, .sample_period = c->wakeup_events);
	struct capture cap;
	sigset_t all, old;

	capture_begin(&cap);
	switch (bpf_map__type(c->map)) {
	case BPF_MAP_TYPE_RINGBUF:
		st->ring = ring_buffer__new(fd, on_ring_record, st, NULL);
		if (!st->ring)
			e = -errno;
		break;
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
		st->perf = perf_buffer__new(fd, PERF_PAGES, on_perf_sample, on_perf_lost, st,
					    &perf_opts);
		if (!st->perf)
			e = -errno;
		break;
	default:
		capture_end();
		return 0;
	}
	capture_end();
	if (e)
		return fail(err, errlen, e, &cap, "opening the %s buffer", bpf_map__name(c->map));

	buffer_epfd = st->ring ? ring_buffer__epoll_fd(st->ring) : perf_buffer__epoll_fd(st->perf);
	st->doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (st->doorbell < 0)
		return fail(err, errlen, -errno, NULL, "eventfd");
	st->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (st->epfd < 0)
		return fail(err, errlen, -errno, NULL, "epoll_create1");
	if ((e = epoll_add(st->epfd, buffer_epfd)) || (e = epoll_add(st->epfd, st->doorbell)))
		return fail(err, errlen, e, NULL, "epoll_ctl");

	/* The poller must not take the process's signals (Ctrl-C belongs to
	 * whoever loaded us): it starts with every signal blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = -pthread_create(&st->thread, NULL, stream_poll, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return fail(err, errlen, e, NULL, "starting the buffer poller thread");
	st->running = true;
	return 0;
}

/* The program's `dropped` counter, through the lookup syscall as every
 * backend reads it (aya's .bss is not mmap-able). */
static int read_dropped(struct bpfstorm_c *c, uint64_t *dropped, char *err, size_t errlen)
{
	struct bpfstorm__bss bss;
	__u32 key = 0;
	int e;

	e = bpf_map__lookup_elem(c->skel->maps.bss, &key, sizeof(key), &bss, sizeof(bss), 0);
	if (e)
		return fail(err, errlen, e, NULL, "looking up `dropped` in .bss");
	*dropped = bss.dropped;
	return 0;
}

/* Adds one key's count. */
static inline void add_key(struct bpfstorm_c_reading *out, uint64_t count)
{
	out->count += count;
	out->keys_live += count != 0;
}

/* The slots of one key's value, as a lookup returns it, summed. */
static inline uint64_t sum_slots(const struct bpfstorm_c *c, const unsigned char *value)
{
	uint64_t sum = 0, slot;
	int i;

	for (i = 0; i < c->nslots; i++) {
		memcpy(&slot, value + i * c->stride, sizeof(slot));
		sum += slot;
	}
	return sum;
}

/* BPF_MAP_LOOKUP_ELEM per key; a hash's missing key counts 0. */
static int read_by_syscall(struct bpfstorm_c *c, struct bpfstorm_c_reading *out, char *err,
			   size_t errlen)
{
	__u32 key;
	int e;

	for (key = 0; key < c->nkeys; key++) {
		e = bpf_map__lookup_elem(c->map, &key, sizeof(key), c->value, c->value_bytes, 0);
		if (e == -ENOENT)
			continue;
		if (e)
			return fail(err, errlen, e, NULL, "looking up key %u of the count in %s", key,
				    bpf_map__name(c->map));
		add_key(out, sum_slots(c, c->value));
	}
	return 0;
}

/* BPF_MAP_LOOKUP_BATCH, a batch of keys a call, until the kernel says there
 * are no more (ENOENT, with the last batch's entries). A hash gives only
 * the keys it holds; an array, every entry. */
static int read_by_batch(struct bpfstorm_c *c, struct bpfstorm_c_reading *out, char *err,
			 size_t errlen)
{
	/* The kernel's position: a bucket (hash) or a key (array); both fit. */
	__u64 in_batch = 0, out_batch = 0;
	int fd = bpf_map__fd(c->map), e;
	/* An array's keys are all there, in order: stop at the last one
	 * rather than ask once more to hear there is nothing left. */
	bool first = true, preallocated = !inserts_keys(c->map);
	__u32 n, i, seen = 0;

	for (;;) {
		n = c->batch_keys;
		e = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, c->keys, c->values,
					 &n, NULL);
		if (e && e != -ENOENT)
			return fail(err, errlen, e, NULL, "batched lookup of the count in %s",
				    bpf_map__name(c->map));
		for (i = 0; i < n && i < c->batch_keys; i++)
			add_key(out, sum_slots(c, c->values + (size_t)i * c->value_bytes));
		seen += n;
		if (e == -ENOENT || (preallocated && seen >= c->nkeys))
			return 0;
		in_batch = out_batch;
		first = false;
	}
}

/* Loads from the mapped values: no syscall. The program writes the slots
 * as we read them. */
static void read_by_mmap(struct bpfstorm_c *c, struct bpfstorm_c_reading *out)
{
	const char *entry = c->mapped;
	uint64_t sum;
	__u32 key;
	int i;

	for (key = 0; key < c->nkeys; key++, entry += c->entry_bytes) {
		sum = 0;
		for (i = 0; i < c->nslots; i++)
			sum += *(const volatile uint64_t *)(entry + i * c->stride);
		add_key(out, sum);
	}
}

int bpfstorm_c_read(struct bpfstorm_c *c, struct bpfstorm_c_reading *out, char *err,
		    size_t errlen)
{
	struct stream *st = &c->stream;
	int e;

	out->count = out->dropped = out->lost_records = out->keys_live = 0;
	if (is_stream(c->map)) {
		if (!st->ring && !st->perf)
			return fail(err, errlen, -ENOTCONN, NULL, "reading %s before starting its stream",
				    bpf_map__name(c->map));
		pthread_mutex_lock(&st->lock);
		e = stream_consume(st);
		out->count = st->records;
		out->lost_records = st->lost;
		pthread_mutex_unlock(&st->lock);
		if (e)
			return fail(err, errlen, e, NULL, "consuming the %s buffer",
				    bpf_map__name(c->map));
		return read_dropped(c, &out->dropped, err, errlen);
	}
	/* Any other map holds the count in u64 slots at keys 0..nkeys (see
	 * `nslots`). */
	if (c->mapped) {
		read_by_mmap(c, out);
		e = 0;
	} else if (c->read_path == BPFSTORM_C_READ_BATCH) {
		e = read_by_batch(c, out, err, errlen);
	} else {
		e = read_by_syscall(c, out, err, errlen);
	}
	if (e || !c->keyed)
		return e; /* a single key has no slot to miss: `dropped` stays 0 */
	return read_dropped(c, &out->dropped, err, errlen);
}

/* Zeroes the program's `dropped` counter (.bss holds nothing else). */
static int reset_dropped(struct bpfstorm_c *c)
{
	struct bpfstorm__bss bss = {};
	__u32 key = 0;

	return bpf_map__update_elem(c->skel->maps.bss, &key, sizeof(key), &bss, sizeof(bss),
				    BPF_ANY);
}

int bpfstorm_c_reset(struct bpfstorm_c *c, char *err, size_t errlen)
{
	struct stream *st = &c->stream;
	__u32 key = 0;
	int e = 0;

	if (is_stream(c->map)) {
		if (!st->ring && !st->perf)
			return 0;
		pthread_mutex_lock(&st->lock);
		e = stream_consume(st);
		st->records = st->lost = 0;
		pthread_mutex_unlock(&st->lock);
		if (!e)
			e = reset_dropped(c);
	} else if (c->resets_by_delete) {
		/* A keyed hash: no key left, so a full map takes new ones again. */
		for (key = 0; !e && key < c->key_count; key++) {
			e = bpf_map__delete_elem(c->map, &key, sizeof(key), 0);
			if (e == -ENOENT)
				e = 0;
		}
	} else {
		/* Zeros in the slots: arrays cannot delete, and a hash counts
		 * on from a zero entry as from none. */
		memset(c->value, 0, c->value_bytes);
		for (key = 0; !e && key < c->nkeys; key++)
			e = bpf_map__update_elem(c->map, &key, sizeof(key), c->value,
						 c->value_bytes, BPF_ANY);
	}
	if (!e && c->keyed)
		e = reset_dropped(c);
	if (e)
		return fail(err, errlen, e, NULL, "resetting the count in %s", bpf_map__name(c->map));
	return 0;
}

int bpfstorm_c_prog_fd(const struct bpfstorm_c *c)
{
	return bpf_program__fd(c->prog);
}

int bpfstorm_c_map_fds(const struct bpfstorm_c *c, int *fds, size_t n)
{
	struct bpf_map *map;
	size_t count = 0;

	bpf_object__for_each_map(map, c->skel->obj) {
		/* A map left uncreated still holds libbpf's placeholder fd. */
		int fd = bpf_map__autocreate(map) ? bpf_map__fd(map) : -1;

		if (fd < 0)
			continue;
		if (count < n)
			fds[count] = fd;
		count++;
	}
	return count;
}

void bpfstorm_c_destroy(struct bpfstorm_c *c)
{
	if (!c)
		return;
	/* The poller goes first, then the link, then the object. */
	stream_stop(&c->stream);
	if (c->mapped)
		munmap(c->mapped, c->mapped_bytes);
	bpf_link__destroy(c->link);
	bpfstorm__destroy(c->skel);
	pthread_mutex_destroy(&c->stream.lock);
	free(c->value);
	free(c->keys);
	free(c->values);
	free(c);
}

const char *bpfstorm_c_libbpf_version(void)
{
	return libbpf_version_string();
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

const char *bpfstorm_c_libbpf_headers_version(void)
{
	return "v" STRINGIFY(LIBBPF_MAJOR_VERSION) "." STRINGIFY(LIBBPF_MINOR_VERSION);
}
