/* umvcore: the native ptrace multiplexer of umview_py.
 *
 * This header is both the C interface and (between the CDEF markers) the
 * declarations handed to cffi, so keep the part between the markers free of
 * preprocessor directives other than plain #define NAME VALUE.
 */
#ifndef UMVCORE_H
#define UMVCORE_H
#include <stdint.h>
#include <sys/types.h>

/* CDEF-BEGIN */
#define UMV_BITMAP_BYTES 128      /* 1024 syscall numbers */
#define UMV_MAX_VIEWS 1024

/* The stat gadget (see native/umvshm.h): the page programs of a fake-root
 * view map at UMV_GADGET_ADDR, and where their stat calls return to. */
#define UMV_GADGET_ADDR 0x75ee000000
#define UMV_GADGET_IP 0x75ee000014
/* syscall numbers below this the shim may be told to run (umvshm.h) */
#define UMV_SHM_CALLS 512
/* port pairs a view may publish to the shim (Claims.connect_map) */
#define UMV_SHM_PORTS 32
/* direct networks of a SOCKS5 proxy the shim may speak to (Claims.socks5) */
#define UMV_SHM_DIRECT 16
/* words of the SOCKS5 entry: on, family, port, timeout ms, address[4],
 * count, then per direct network family << 8 | prefix bits, address[4] */
#define UMV_SHM_SOCKS_WORDS 89   /* 9 + 5 * UMV_SHM_DIRECT */

/* SECCOMP_RET_DATA values our filters use; anything else came from a filter
 * the tracee installed itself. */
#define UMV_DATA_CLAIM 0x7501
#define UMV_DATA_VSYS 0x7502
#define UMV_DATA_GUARD 0x7503
#define UMV_DATA_BOUNCE 0x7504

/* the virtual syscall: a number no kernel has */
#define UMV_NR_VSYS 0x7500
/* a notified call sent on to the ptrace road restarts as this number */
#define UMV_NR_BOUNCE 0x7501

/* event kinds, C -> Python */
#define UMV_EV_SYSCALL 1   /* a claimed call at its seccomp stop; reply needed */
#define UMV_EV_SYSEXIT 2   /* exit of a call Python asked to see; reply needed */
#define UMV_EV_EXIT 3      /* a process (thread-group leader) ended; retval = wait status */
#define UMV_EV_ALLGONE 4   /* no tracee left */
#define UMV_EV_GROUPSTOP 5 /* the first tracee entered a group-stop; data = signal */
#define UMV_EV_FORK 6      /* a new process; data = parent pid */
#define UMV_EV_LOG 7       /* diagnostic from the core; data = code, retval = value */
#define UMV_EV_SIGNAL 8    /* a signal is delivered (only with UMV_REPORT_SIGNALS); data = signal */

/* core flags (umv_set_flags) */
#define UMV_REPORT_SIGNALS 1
#define UMV_LAZY_EVENTS 2   /* forks and exits wait in the queue (see push_event) */

/* reply actions, Python -> C */
#define UMV_ACT_CONT 1      /* run the call in the kernel (args/nr possibly rewritten) */
#define UMV_ACT_SKIP 2      /* do not run it; value is the result */
#define UMV_ACT_RUN_EXIT 3  /* run it and report UMV_EV_SYSEXIT */
#define UMV_ACT_SET_RESULT 4 /* at a SYSEXIT: make value the result */
#define UMV_ACT_DEFER 5     /* (callback only) the answer comes later by umv_reply */
#define UMV_ACT_REWRITE 6   /* (callback only) run it as ev->nr with ev->args; the
                               program's arguments are put back at its exit */

/* view flags */
#define UMV_VIEW_NO_VDSO 1  /* hide the vDSO from programs exec'd in this view */
#define UMV_VIEW_EXEC_FOUND 2  /* execs of missing files need no module (Claims.exec_found) */
#define UMV_VIEW_EXEC_SETID 4  /* execs of files not set-id need no module (Claims.exec_setid) */

typedef struct {
    int kind;
    int tid;
    int pid;          /* thread group */
    int view;
    long nr;
    uint64_t args[6];
    int64_t retval;
    uint64_t ip;
    uint64_t sp;
    int data;
} umv_event;

typedef struct {
    uint64_t stops;          /* all ptrace stops seen */
    uint64_t seccomp_stops;
    uint64_t fast_resumed;   /* seccomp stops resumed in C without Python */
    uint64_t fast_paths;     /* ...of which path calls run by the kernel as they are */
    uint64_t fast_moved;     /* ...of which path calls run on a pass's host path */
    uint64_t fast_served;    /* ...of which calls that only read, run here */
    uint64_t notif_calls;    /* calls that came as seccomp user notifications */
    uint64_t notif_paths;    /* ...answered CONTINUE by the path fast path */
    uint64_t notif_served;   /* ...run here on a pass's host path */
    uint64_t notif_stats;    /* ...stat calls answered (Claims.stat_owner) */
    uint64_t notif_bounced;  /* ...sent on to the ptrace road */
    uint64_t notif_unknown;  /* ...from a thread the tracer did not know (CONTINUE) */
    uint64_t fast_stats;     /* stat calls answered in C (umv_view_set_statown) */
    uint64_t to_python;
    uint64_t python_ns;      /* time spent in the Python callback */
    uint64_t injections;
    uint64_t injection_failures;
    int tracees;
} umv_stats;

int umv_init(void);
int umv_event_fd(void);
/* nfilter: the view's filter (filter) with the calls the C core serves
 * from a seccomp listener sent there, nfilter_len instructions, followed
 * by the bitmap of those calls; installed with a listener in place of
 * filter (NULL: none; the kernel may also refuse the child a listener,
 * and then filter is installed). */
int umv_spawn(const char *path, char *const argv[], char *const envp[],
              const char *cwd, const void *filter, int filter_len,
              const void *nfilter, int nfilter_len, int view,
              int pin_cpu, const int *reset_signals, int nreset, const int *stdio);
int umv_get_events(umv_event *buf, int max);
int umv_reply(int tid, int action, int64_t value, long nr, const uint64_t *args);
int umv_view_set(int view, const unsigned char *bitmap, int flags,
                 const void *filter, int filter_len);
/* Path fast path.  rules: UMV_PATH_RULE_INTS ints per syscall number:
 * path arg, its dirfd arg, second path arg, its dirfd arg (-1 = none),
 * eligible, may run below a pass, follow mode of the first path (0 never,
 * 1 always or cannot tell, 2 unless arg & mask, 3 only if arg & mask,
 * 4 open flags), its flags arg, mask; and for calls that only read,
 * umv_serve_here's buf_i, size, size_i and str_i (buf_i -2: not one);
 * whether it is an exec (its #! or ELF interpreter is checked too);
 * and, for a call on an fd that names no path (fchmod...), the fd's arg
 * (-1 none): it reaches Python only when the fd's file is the view's
 * business, as a path call with an empty or NULL path does for its dirfd.
 * paths: the view's prefixes, each
 * "C/prefix\0" (a path at, under or above it is the view's business),
 * "B/prefix\0" (a cwd or dirfd in it makes the call the view's business)
 * or "P/guest\0/host\0" (a pass: guest shows the plain host directory
 * host, and a call whose path stays below it, as openat2 RESOLVE_BENEATH
 * walks it, runs on the host path); NULL = every path call goes to Python. */
#define UMV_PATH_RULE_INTS 15
int umv_set_path_rules(const int32_t *rules, int n);
/* Run syscall nr here for tracee tid (a call that only reads, on a path the
 * view moved): args as the tracee gave them, but arg path_i is host (and
 * dirfd_i, if >= 0, AT_FDCWD), the string at str_i (if >= 0) is copied from
 * the tracee, and the output at buf_i (if >= 0) is copied back to it: `size`
 * bytes, or, when size_i >= 0, at most args[size_i] bytes, as many as the
 * result says.  Returns the result, or -errno.  No ptrace: memory only. */
int64_t umv_serve_here(int tid, long nr, const uint64_t *args, int path_i, const char *host,
                       int dirfd_i, int str_i, int buf_i, int64_t size, int size_i);
/* lstat of path below directory fd dirfd, reached with no symlink, no '..'
 * above dirfd and no magic link on the way (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, O_PATH | O_NOFOLLOW): 0 and *mode, *size..., or
 * -errno.  out[0..3] = st_mode, st_ino, st_dev, st_nlink. */
int umv_stat_beneath(int dirfd, const char *path, uint64_t *out);
long umv_vsys(const char *req, long len, char *out, long outlen);
/* Stat calls answered in C (Claims.stat_owner): a table of the (dev, ino)
 * keys of files that must still reach Python, and per view the owner shown
 * for every other file.  cfg: uid, gid, real uid, real gid, keep_others,
 * kernel_dev major, kernel_dev minor (major 0xffffffff: none). */
int umv_stat_table_new(void);
void umv_stat_table_free(int table);
int umv_stat_table_set(int table, uint64_t dev, uint64_t ino, int on);
int umv_stat_table_has(int table, uint64_t dev, uint64_t ino);
int umv_view_set_statown(int view, int table, const uint32_t *cfg);
/* Claims.same_ids: every process of the view has user ids uid and group
 * ids gid (on = 0: not so, or not known); the shim answers getuid & co.
 * and the set*id calls that change nothing. */
int umv_view_set_ids(int view, int on, uint32_t uid, uint32_t gid);
/* What the shim may do itself for a network module: Claims.connect_map,
 * nports pairs guest << 16 | host (a connect to an IPv4 loopback or
 * 0.0.0.0 address at port guest goes to host), and Claims.socks5,
 * UMV_SHM_SOCKS_WORDS words (NULL: none; blocking TCP connects through
 * that proxy). */
int umv_view_set_net(int view, int nports, const uint32_t *pairs, const uint32_t *socks);
int umv_shm_fd(void);
int umv_shm_holder(void);
void umv_shm_stop(void);
int umv_view_set_paths(int view, const char *paths, int len, const unsigned char *shim_calls);
int umv_set_process_view(int pid, int view);
int64_t umv_peek(int pid, uint64_t addr, void *buf, size_t len);
int64_t umv_poke(int pid, uint64_t addr, const void *buf, size_t len);
int64_t umv_peek_string(int pid, uint64_t addr, char *buf, size_t len);
int umv_kill_all(int sig);
int umv_kill_view(int view, int sig);
void umv_set_flags(int flags);
int umv_watch_exit(int pid);
void umv_get_stats(umv_stats *out);
int umv_shutdown(void);
/* CDEF-END */

/* Implemented in Python (cffi extern "Python+C", see native/build_core.py):
 * called on the tracer thread, with the GIL taken by cffi, for each claimed
 * call.  Returns UMV_ACT_SKIP (result in *value), UMV_ACT_CONT, or
 * UMV_ACT_DEFER: Python answers later with umv_reply(). */
int umv_py_syscall(umv_event *ev, int64_t *value);

#endif
