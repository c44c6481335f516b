/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by the BPF programs and every loader that reads them. */
#ifndef BPFSTORM_H
#define BPFSTORM_H

/* enum storm_map_kind, enum storm_update_mode, and the sizes (STORM_*) */
#include "bpfstorm_abi.h"

/* One record per event for the ring and perf buffers. */
struct storm_event {
	__u32 tgid;
	__u32 cpu;
};

/* One CPU's slot of the `global_percpu` count: a cache line, so CPUs never
 * share one. */
struct storm_slot {
	__u64 count;
} __attribute__((aligned(STORM_GLOBAL_SLOT_BYTES)));

#endif /* BPFSTORM_H */
