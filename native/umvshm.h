/* umvshm: what the C core shares with the stat shim (native/umvshim.c).
 *
 * Under a fake root most stat calls get the kernel's answer with the owner
 * replaced (Claims.stat_owner).  The C core does that at a seccomp
 * notification, which still costs a round trip through the hypervisor per
 * call (~6 µs bare here, ~15-40 µs under a parallel build).  Programs
 * linked against libc can be answered inside their own process instead:
 * `umview -0` preloads the shim, which makes the stat call itself and
 * replaces the owner, and goes through the notifier only for what it cannot
 * answer.  What it needs to know is in one memfd of the hypervisor that the
 * shim maps read-only (found as /proc/HVPID/fd/N in $UMVIEW_SHM):
 *
 *   - view_of[tgid]: the view of each traced process, plus one (0: not
 *     ours).  The tracer writes it when it first sees a process, before
 *     the process runs, when a process changes view, and when it ends.
 *   - view[v]: whether the view's stat calls may be answered in-process
 *     (one module serves them all, through Claims.stat_owner), and that
 *     module's seven numbers (StatOwner.config()), under a sequence count.
 *   - bloom: a Bloom filter of the (dev, ino) keys every module has listed
 *     (Module.stat_listed): those files have records the module must
 *     apply.  Bits are never cleared: a key dropped later, or a false
 *     positive, only sends that file's stats the slow way.
 *
 * The shim's own stat calls must not be trapped again, so it makes them
 * through a small gadget at a fixed address, and the filters a fake-root
 * view installs allow the stat family when the call returns to
 * UMV_GADGET_IP (seccomp_data.instruction_pointer is the address after the
 * `syscall` instruction).  A program that jumps there on purpose sees the
 * kernel's owners: nothing it could not learn anyway.
 */
#ifndef UMVSHM_H
#define UMVSHM_H
#include <stdint.h>
#include "umvcore.h"

#define UMV_SHM_MAGIC 0x316d687376756d75ULL   /* "umvshm1" */
#define UMV_SHM_PIDS 4194304                  /* PID_MAX_LIMIT on 64-bit */
#define UMV_SHM_BLOOM_BITS (1u << 24)         /* 2 MB: ~0.1% false hits at 500,000 keys */

struct umv_shm_view {
    uint32_t seq;        /* odd while the core rewrites the entry */
    uint32_t on;         /* answer stat calls in-process */
    uint32_t cfg[7];     /* StatOwner.config() */
};

struct umv_shm {
    uint64_t magic;
    struct umv_shm_view view[UMV_MAX_VIEWS];
    uint64_t bloom[UMV_SHM_BLOOM_BITS / 64];
    uint16_t view_of[UMV_SHM_PIDS];
};

/* the two Bloom positions of a key; dev as st_dev encodes it */
static inline void umv_shm_bloom_pos(uint64_t dev, uint64_t ino, uint32_t pos[2]) {
    uint64_t h = (ino ^ (dev * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
    pos[0] = (uint32_t)h & (UMV_SHM_BLOOM_BITS - 1);
    pos[1] = (uint32_t)(h >> 32) & (UMV_SHM_BLOOM_BITS - 1);
}

#endif
