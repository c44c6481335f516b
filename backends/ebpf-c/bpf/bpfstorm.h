/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by the BPF programs and every loader that reads them. */
#ifndef BPFSTORM_H
#define BPFSTORM_H

/* Map kinds, compiled into each program; same order as bpfstorm_common::MapKind. */
enum storm_map_kind {
	STORM_MAP_ARRAY = 0,
	STORM_MAP_HASH = 1,
	STORM_MAP_PERCPU_ARRAY = 2,
	STORM_MAP_PERCPU_HASH = 3,
	STORM_MAP_RINGBUF = 4,
	STORM_MAP_PERF_EVENT_ARRAY = 5,
};

/* Update modes, compiled into each program (bpfstorm_common::UpdateMode). */
enum storm_update_mode {
	STORM_UPDATE_ATOMIC = 0,
	STORM_UPDATE_PERCPU = 1,
	STORM_UPDATE_RACY = 2,
	STORM_UPDATE_STREAM = 3,
};

/* One record per event for the ring and perf buffers. */
struct storm_event {
	__u32 tgid;
	__u32 cpu;
};

#define STORM_RINGBUF_BYTES (256 * 1024)

#endif /* BPFSTORM_H */
