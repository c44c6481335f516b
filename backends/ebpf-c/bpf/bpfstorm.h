/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by the BPF programs and every loader that reads them. */
#ifndef BPFSTORM_H
#define BPFSTORM_H

/* enum storm_map_kind, enum storm_update_mode, STORM_RINGBUF_BYTES */
#include "bpfstorm_abi.h"

/* One record per event for the ring and perf buffers. */
struct storm_event {
	__u32 tgid;
	__u32 cpu;
};

#endif /* BPFSTORM_H */
