// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The classic tutorial's user space (counter.c on a bpftool skeleton), on
 * this crate's loader: load, attach, print the count every interval. The
 * tutorial's `while (1)` never reaches its cleanup; here SIGINT and SIGTERM
 * end the loop, so the program is detached and unloaded on the way out. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "loader.h"

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

/* Sleeps until `deadline`, or less when a signal asks to stop. */
static void sleep_until(const struct timespec *deadline)
{
	while (!exiting &&
	       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL) == EINTR)
		;
}

static void print_reading(const char *label, const struct bpfstorm_c_reading *r)
{
	printf("%s: %llu", label, (unsigned long long)r->count);
	if (r->dropped || r->lost_records)
		printf(" (dropped: %llu, lost records: %llu)", (unsigned long long)r->dropped,
		       (unsigned long long)r->lost_records);
	printf("\n");
	fflush(stdout);
}

int bpfstorm_c_counter_loop(const struct bpfstorm_c_strategy *strategy, unsigned int interval_ms,
			    char *err, size_t errlen)
{
	/* No SA_RESTART: the signal must cut the sleep short. */
	struct sigaction on_stop = { .sa_handler = on_signal }, old_int, old_term;
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info);
	struct bpfstorm_c_reading reading;
	struct bpfstorm_c *c = NULL;
	struct timespec next;
	int e;

	exiting = 0;
	sigemptyset(&on_stop.sa_mask);
	sigaction(SIGINT, &on_stop, &old_int);
	sigaction(SIGTERM, &on_stop, &old_term);

	e = bpfstorm_c_open(strategy, &c, err, errlen);
	if (!e)
		e = bpfstorm_c_load(c, err, errlen);
	if (!e)
		e = bpfstorm_c_attach(c, err, errlen);
	if (!e)
		e = bpfstorm_c_start_stream(c, err, errlen);
	if (e)
		goto cleanup;
	if (bpf_prog_get_info_by_fd(bpfstorm_c_prog_fd(c), &info, &info_len))
		info.id = 0;
	printf("counting with %s into map %s (prog id %u), every %u ms; Ctrl-C to stop\n",
	       strategy->program, strategy->map, info.id, interval_ms);
	fflush(stdout);

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!exiting) {
		next.tv_sec += interval_ms / 1000;
		next.tv_nsec += (long)(interval_ms % 1000) * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		sleep_until(&next);
		if (exiting)
			break;
		e = bpfstorm_c_read(c, &reading, err, errlen);
		if (e)
			goto cleanup;
		print_reading("count", &reading);
	}
	e = bpfstorm_c_read(c, &reading, err, errlen);
	if (e)
		goto cleanup;
	print_reading("final count", &reading);
	printf("detaching and unloading\n");
	fflush(stdout);
cleanup:
	bpfstorm_c_destroy(c);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return e;
}
