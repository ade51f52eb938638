/* umvcore.c: the only code in umview_py that calls ptrace(2).
 *
 * Shape: one tracer thread, created by umv_init(), owns every tracee (the
 * kernel insists that all ptrace requests for a tracee come from the thread
 * that attached it).  It sleeps in waitid() until a tracee changes state
 * (see tracer_main for how a command from Python wakes it), and
 *   - handles lifecycle stops itself (fork/clone/exec/exit, group-stops,
 *     signal delivery),
 *   - resumes seccomp stops that no module of the tracee's view claims (the
 *     fast path: Python never hears of them),
 *   - queues the rest as events for Python and keeps the tracee stopped until
 *     a reply arrives through the command queue.
 * Python (trio) waits on umv_event_fd(), takes events with umv_get_events()
 * and answers with umv_reply().  Tracee memory is read and written with
 * process_vm_readv/writev, which any thread of the tracer may call.
 *
 * Why a dedicated thread rather than the trio thread: fast-path stops and
 * lifecycle stops then never wait for the Python interpreter (a module busy in
 * Python, or the GIL held by anyone, does not stall a `make -j2`), and the
 * numbers in docs/design.md show the hand-off costs less than trio's own
 * per-task overhead.
 */
#define _GNU_SOURCE
#include "umvcore.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kcmp.h>
#include <sys/ptrace.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <setjmp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <limits.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "umvshm.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#ifndef CLONE_UNTRACED
#define CLONE_UNTRACED 0x00800000
#endif
#ifndef CLONE_THREAD
#define CLONE_THREAD 0x00010000
#endif
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516
#define AT_SYSINFO_EHDR_ 33
#define PTRACE_GET_SYSCALL_INFO_ 0x420e
#define PTRACE_SYSCALL_INFO_EXIT_ 2
#define PTRACE_SYSCALL_INFO_SECCOMP_ 3

/* struct ptrace_syscall_info (Linux 5.3), as far as a seccomp stop fills it */
struct sysinfo_seccomp {
    uint8_t op;
    uint8_t pad[3];
    uint32_t arch;
    uint64_t ip, sp;
    uint64_t nr, args[6];
    uint32_t ret_data;
    uint32_t pad2;
};
#define AT_IGNORE_ 1

/* ------------------------------------------------------------------ */
/* tables                                                              */

enum tstate {
    T_RUNNING,     /* resumed by us */
    T_NEW,         /* announced by the parent's fork/clone event, first stop not seen */
    T_ORPHAN,      /* first stop seen before the parent's event: held until it comes */
    T_PYTHON,      /* at a seccomp stop, waiting for Python */
    T_WANT_EXIT,   /* resumed with PTRACE_SYSCALL, exit stop goes to Python */
    T_PYEXIT,      /* at a syscall-exit stop, waiting for Python */
    T_RESTORE,     /* runs with rewritten arguments; restore them at its exit */
    T_INJECT,      /* running an injected seccomp() call */
    T_LISTEN,      /* in a group-stop, restarted with PTRACE_LISTEN */
};

typedef struct proc {
    pid_t tgid;
    int view;
    int nthreads;
    int inject_busy;            /* a thread of ours is running seccomp() for it */
    int interrupted;            /* PTRACE_INTERRUPT sent to its threads */
    int threaded;               /* it has made a thread (see exec_wanted) */
    pid_t mem_of;               /* a vfork child: whose memory it runs in, until it execs or ends */
    int vforks;                 /* vfork children running in its memory */
    int fd_shared;              /* its fd table or memory is another running process's too */
    int pidfd;                  /* for pidfd_getfd (stat of an fd), -1 = not open yet */
    unsigned char installed[UMV_BITMAP_BYTES];
    unsigned char notify[UMV_BITMAP_BYTES];  /* calls its listener filter notifies */
    int has_notify;
    struct dircache {           /* see dir_of: [0] the cwd, [1], [2] dirfds */
        char *path;             /* NULL: empty */
        size_t len;
        int tfd, fd;            /* the tracee's fd (or AT_FDCWD), our O_PATH twin */
        unsigned gen;
    } dc[3];
    int dc_next;
    struct proc *next;
} proc;

typedef struct tracee {
    pid_t tid;
    int state;
    proc *p;
    int inj_restart;            /* injection replaced a syscall that must run again */
    int inj_sig;                /* signal to deliver when the injection ends */
    int restore_args;           /* the call ran with rewritten arguments */
    long bounce_nr;             /* 1 + a notified call sent on to ptrace (see notif_bounce) */
    long notif_pass;            /* 1 + a call let run from a seccomp stop: see let_run */
    int exec_opt;               /* its ptrace options hold PTRACE_O_TRACEEXEC */
    uint64_t orig_args[6];      /* ...these were the program's */
    struct user_regs_struct saved;
    struct tracee *next;
} tracee;

/* A directory the view shows at `guest` that is the plain host directory
 * `host` (a bind or tmpfs mount): see pass_beneath. */
struct pass {
    char *guest, *host;
    size_t glen, hlen;
    int hfd;                    /* O_PATH fd of host */
    char *lower;                /* an overlay (a cow mount): host is its upper */
    size_t llen;                /* layer, lower its lower one; see overlay_class */
    int lfd;                    /* O_PATH fd of lower, -1: a plain pass */
};

typedef struct {
    int active;
    int flags;
    unsigned char claims[UMV_BITMAP_BYTES];  /* fast path: calls some module wants */
    unsigned char trap[UMV_BITMAP_BYTES];    /* what `filter` traps (plus rule bits) */
    struct sock_filter *filter;
    int filter_len;
    char *paths;                /* see umv_view_set_paths; NULL = no path fast path */
    int paths_len;
    struct pass *passes;        /* plain host directories shown elsewhere ('P' entries) */
    int npasses;
    int stat_table;             /* umv_view_set_statown: table + 1, 0 = off */
    uint32_t stat_cfg[7];
    uint32_t ids_on, ids[2];    /* umv_view_set_ids */
    uint32_t nports, ports[UMV_SHM_PORTS];   /* umv_view_set_net */
    uint32_t socks[UMV_SHM_SOCKS_WORDS];
    int nprocs;                 /* its processes (the tracer's count) */
} view;

#define HBUCKETS 4096
static tracee *ttab[HBUCKETS];
static proc *ptab[HBUCKETS];
static view views[UMV_MAX_VIEWS];
static int ntracees;
static pid_t root_pid;
static pid_t self_pid;
static umv_stats stats;
static volatile int core_flags;

void umv_set_flags(int flags) { core_flags = flags; }

static tracee *tfind(pid_t tid) {
    for (tracee *t = ttab[tid % HBUCKETS]; t; t = t->next)
        if (t->tid == tid) return t;
    return NULL;
}
/* the memfd shared with the stat shim (native/umvshm.h); NULL until
 * umv_shm_fd() made it */
static struct umv_shm *shm;
static void shm_set_view(pid_t tgid, int viewno) {
    if (shm && tgid > 0 && tgid < UMV_SHM_PIDS)
        __atomic_store_n(&shm->view_of[tgid], (uint16_t)(viewno + 1), __ATOMIC_RELEASE);
}
/* A call of process p that the core sees: the shim of p learns that an
 * fd may have been given behind its back (umvshm.h: seen_of). */
static void note_seen(const proc *p) {
    if (shm && p->tgid > 0 && p->tgid < UMV_SHM_PIDS)
        __atomic_add_fetch(&shm->seen_of[p->tgid], 1, __ATOMIC_ACQ_REL);
}
/* Its count moves on, with UMV_SEEN_SHARED while the shim must trust
 * nothing it kept: p shares its fd table or memory with a running
 * process, or a vfork child runs in its memory (the child's shim keeps
 * its own fds' paths in the parent's memory). */
static void note_shared(const proc *p) {
    if (!shm || p->tgid <= 0 || p->tgid >= UMV_SHM_PIDS) return;
    uint32_t *c = &shm->seen_of[p->tgid], was = __atomic_load_n(c, __ATOMIC_ACQUIRE), now;
    do now = ((was + 1) & ~UMV_SEEN_SHARED) | (p->fd_shared || p->vforks ? UMV_SEEN_SHARED : 0);
    while (!__atomic_compare_exchange_n(c, &was, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
}
static proc *pfind(pid_t tgid);
/* A vfork child execs or ends: the memory is its parent's alone again.
 * (The parent may run before the core sees this: it trusts nothing
 * until then.) */
static void vfork_done(proc *p) {
    if (!p->mem_of) return;
    proc *owner = pfind(p->mem_of);
    p->mem_of = 0;
    if (owner && owner->vforks > 0) {
        owner->vforks--;
        note_shared(owner);
    }
}
static proc *pfind(pid_t tgid) {
    for (proc *p = ptab[tgid % HBUCKETS]; p; p = p->next)
        if (p->tgid == tgid) return p;
    return NULL;
}
static proc *pnew(pid_t tgid, int viewno, const unsigned char *installed) {
    proc *p = calloc(1, sizeof *p);
    p->tgid = tgid;
    p->view = viewno;
    p->pidfd = -1;
    views[viewno].nprocs++;
    shm_set_view(tgid, viewno);
    note_shared(p);   /* a count no stamp of the pid's last process holds */
    if (installed) memcpy(p->installed, installed, UMV_BITMAP_BYTES);
    p->next = ptab[tgid % HBUCKETS];
    ptab[tgid % HBUCKETS] = p;
    return p;
}
static void dc_drop(struct dircache *c);
static void pdel(proc *p) {
    proc **pp = &ptab[p->tgid % HBUCKETS];
    while (*pp != p) pp = &(*pp)->next;
    *pp = p->next;
    views[p->view].nprocs--;
    shm_set_view(p->tgid, -1);
    vfork_done(p);
    for (int i = 0; i < 3; i++) dc_drop(&p->dc[i]);
    if (p->pidfd >= 0) close(p->pidfd);
    free(p);
}
static void notif_sync_update(void);

static tracee *tnew(pid_t tid, proc *p, int state) {
    tracee *t = calloc(1, sizeof *t);
    t->tid = tid;
    t->p = p;
    t->state = state;
    if (p) p->nthreads++;
    t->next = ttab[tid % HBUCKETS];
    ttab[tid % HBUCKETS] = t;
    ntracees++;
    notif_sync_update();
    return t;
}
static void tdel(tracee *t) {
    tracee **pp = &ttab[t->tid % HBUCKETS];
    while (*pp != t) pp = &(*pp)->next;
    *pp = t->next;
    if (t->p && --t->p->nthreads == 0) pdel(t->p);
    free(t);
    ntracees--;
    notif_sync_update();
}
static int bit(const unsigned char *bm, long nr) {
    return nr >= 0 && nr < UMV_BITMAP_BYTES * 8 && (bm[nr >> 3] >> (nr & 7)) & 1;
}
static int covered(const unsigned char *want, const unsigned char *have) {
    for (int i = 0; i < UMV_BITMAP_BYTES; i++)
        if (want[i] & ~have[i]) return 0;
    return 1;
}
static int needs_filter(proc *p) {
    view *v = &views[p->view];
    return v->filter && !covered(v->trap, p->installed);
}

/* ------------------------------------------------------------------ */
/* queues between the tracer thread and Python                         */

enum { CMD_REPLY = 1, CMD_VIEW_SET, CMD_SET_VIEW, CMD_SPAWN, CMD_KILL, CMD_STOP, CMD_VIEW_PATHS, CMD_BOUNCE };

typedef struct cmd {
    int kind, tid, action;
    int64_t value;
    long nr;
    int has_args;
    uint64_t args[6];
    /* view set */
    int flags;
    unsigned char claims[UMV_BITMAP_BYTES];
    struct sock_filter *filter;
    int filter_len;
    /* spawn: the same filter notifying (SECCOMP_RET_USER_NOTIF) some calls */
    struct sock_filter *nfilter;
    int nfilter_len;
    const char *path;
    char *const *argv, *const *envp;
    const char *cwd;
    int pin_cpu;
    const int *reset;
    int nreset;
    const int *stdio;
    int result;
    int done;
    struct cmd *next;
} cmd;
static void do_view_paths(cmd *c);

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static cmd *cmd_head, *cmd_tail;
static umv_event *evq;
static size_t ev_head, ev_count, ev_cap;
static int ev_fd = -1, cmd_fd = -1;

/* Waking the tracer for a command.  It sleeps in waitid(), which no fd can
 * interrupt, so push_cmd() sets cmd_kick and sends the tracer thread
 * KICK_SIG.  Its handler leaves the wait with siglongjmp, but only while
 * wait_armed says the thread is at the wait (nowhere else can it be
 * interrupted halfway), and the wait uses WNOWAIT: a status it saw just
 * before the jump is still there for the next one, never lost.  (A signal
 * arriving before the wait begins is seen by the cmd_kick check that comes
 * after arming.)  One syscall per stop to sleep and one to reap, where the
 * poll() on a signalfd took four. */
#define KICK_SIG (SIGRTMAX - 3)
static sigjmp_buf wait_jb;
static volatile sig_atomic_t wait_armed;
static int cmd_kick;
static struct sigaction old_kick;

static void on_kick(int sig) {
    (void)sig;
    if (wait_armed) {
        wait_armed = 0;
        siglongjmp(wait_jb, 1);
    }
}
static pthread_t tracer;
static int started, stopping;
static sigset_t orig_mask;

/* Forks and exits only keep Python's books (parents, processes per
 * view), and waking the trio thread for each costs it ~40 µs of CPU:
 * about 1% of make -j2 in an empty view (~250 of them).  With
 * UMV_LAZY_EVENTS they wait in the queue until another event wakes
 * Python, or LAZY_MAX of them are there, except an exit someone waits for:
 * a pid umv_watch_exit named, or the last process of its view (a view
 * waited to become idle, or retired).  Python drains the queue itself
 * before it reads those books. */
#define LAZY_MAX 128
static pid_t *watched;
static size_t nwatched, capwatched;

int umv_watch_exit(int pid) {
    pthread_mutex_lock(&qlock);
    int ok = 0;
    for (size_t i = 0; i < nwatched && !ok; i++) ok = watched[i] == (pid_t)pid;   /* once (its exit unwatches it once) */
    if (!ok && nwatched == capwatched) {
        size_t ncap = capwatched ? capwatched * 2 : 16;
        pid_t *n = realloc(watched, ncap * sizeof *n);
        if (n) { watched = n; capwatched = ncap; }
    }
    if (!ok && nwatched < capwatched) { watched[nwatched++] = (pid_t)pid; ok = 1; }
    pthread_mutex_unlock(&qlock);
    return ok ? 0 : -ENOMEM;
}

/* under qlock: was pid watched (it is not any more)? */
static int unwatch(pid_t pid) {
    for (size_t i = 0; i < nwatched; i++)
        if (watched[i] == pid) { watched[i] = watched[--nwatched]; return 1; }
    return 0;
}

static void push_event(const umv_event *e) {
    pthread_mutex_lock(&qlock);
    if (ev_count == ev_cap) {
        size_t ncap = ev_cap ? ev_cap * 2 : 256;
        umv_event *n = malloc(ncap * sizeof *n);
        for (size_t i = 0; i < ev_count; i++) n[i] = evq[(ev_head + i) % ev_cap];
        free(evq);
        evq = n;
        ev_head = 0;
        ev_cap = ncap;
    }
    evq[(ev_head + ev_count) % ev_cap] = *e;
    ev_count++;
    int wake = 1;
    if ((core_flags & UMV_LAZY_EVENTS) && (e->kind == UMV_EV_FORK || e->kind == UMV_EV_EXIT)) {
        wake = ev_count >= LAZY_MAX;
        /* an exit: the view's last process is still counted (pdel comes after) */
        if (e->kind == UMV_EV_EXIT && (unwatch(e->pid) || views[e->view].nprocs <= 1)) wake = 1;
    } else if (e->kind == UMV_EV_EXIT) {
        unwatch(e->pid);
    }
    pthread_mutex_unlock(&qlock);
    uint64_t one = 1;
    if (wake && write(ev_fd, &one, 8) < 0) { /* eventfd cannot overflow at this rate */ }
}

int umv_get_events(umv_event *buf, int max) {
    uint64_t v;
    if (read(ev_fd, &v, 8) < 0) { /* EAGAIN: nothing signalled, queue may still hold events */ }
    pthread_mutex_lock(&qlock);
    int n = 0;
    while (n < max && ev_count) {
        buf[n++] = evq[ev_head];
        ev_head = (ev_head + 1) % ev_cap;
        ev_count--;
    }
    if (ev_count) {
        uint64_t one = 1;
        if (write(ev_fd, &one, 8) < 0) {}
    }
    pthread_mutex_unlock(&qlock);
    return n;
}

static void push_cmd(cmd *c) {
    c->next = NULL;
    pthread_mutex_lock(&qlock);
    if (cmd_tail) cmd_tail->next = c; else cmd_head = c;
    cmd_tail = c;
    pthread_mutex_unlock(&qlock);
    __atomic_store_n(&cmd_kick, 1, __ATOMIC_SEQ_CST);
    uint64_t one = 1;
    if (write(cmd_fd, &one, 8) < 0) {}
    pthread_kill(tracer, KICK_SIG);
}

/* Commands that return a result: wait for the tracer thread to finish them. */
static int push_cmd_wait(cmd *c) {
    push_cmd(c);
    pthread_mutex_lock(&qlock);
    while (!c->done) pthread_cond_wait(&qcond, &qlock);
    pthread_mutex_unlock(&qlock);
    return c->result;
}

static void cmd_done(cmd *c, int result) {
    pthread_mutex_lock(&qlock);
    c->result = result;
    c->done = 1;
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
}

/* ------------------------------------------------------------------ */
/* memory                                                              */

int64_t umv_peek(int pid, uint64_t addr, void *buf, size_t len) {
    struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
    return n < 0 ? -errno : n;
}

/* Set on the notifier thread while it serves a notification: a write into
 * the caller must not happen once the notification is gone (the call was
 * interrupted, the thread killed, its memory reused). */
static __thread int notif_cur_fd = -1;
static __thread uint64_t notif_cur_id;

int64_t umv_poke(int pid, uint64_t addr, const void *buf, size_t len) {
    if (notif_cur_fd >= 0 && ioctl(notif_cur_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &notif_cur_id) < 0)
        return -ESRCH;
    struct iovec l = {(void *)buf, len}, r = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_writev(pid, &l, 1, &r, 1, 0);
    return n < 0 ? -errno : n;
}

/* Reads a NUL-terminated string of at most len-1 bytes.  Reads page by page so
 * that a string ending just before an unmapped page is still read.  Returns
 * its length, -EFAULT for a bad pointer, -ENAMETOOLONG when no NUL fits. */
int64_t umv_peek_string(int pid, uint64_t addr, char *buf, size_t len) {
    size_t got = 0;
    while (got + 1 < len) {
        size_t chunk = 4096 - ((addr + got) & 4095);
        if (chunk > len - 1 - got) chunk = len - 1 - got;
        int64_t n = umv_peek(pid, addr + got, buf + got, chunk);
        if (n <= 0) return -EFAULT;
        char *z = memchr(buf + got, 0, n);
        if (z) return z - buf;
        got += n;
    }
    buf[len - 1] = 0;
    return -ENAMETOOLONG;
}

/* ------------------------------------------------------------------ */
/* resuming                                                            */

static void fill_event(umv_event *ep, int kind, tracee *t, const struct user_regs_struct *r,
                       int data, int64_t retval) {
    umv_event e = {0};
    e.kind = kind;
    e.tid = t ? t->tid : 0;
    e.pid = t && t->p ? t->p->tgid : 0;
    e.view = t && t->p ? t->p->view : 0;
    e.data = data;
    e.retval = retval;
    if (r) {
        e.nr = (long)r->orig_rax;
        e.args[0] = r->rdi; e.args[1] = r->rsi; e.args[2] = r->rdx;
        e.args[3] = r->r10; e.args[4] = r->r8; e.args[5] = r->r9;
        e.ip = r->rip;
        e.sp = r->rsp;
    }
    *ep = e;
}

static void emit(int kind, tracee *t, const struct user_regs_struct *r, int data, int64_t retval) {
    umv_event e;
    fill_event(&e, kind, t, r, data, retval);
    push_event(&e);
}

static void maybe_interrupt(proc *p);

/* Exec stops only where they are needed.  An exec stop (PTRACE_EVENT_EXEC)
 * is one more round trip to this thread per program run, ~40 µs on a VM
 * that wakes the other CPU slowly, and a build makes hundreds of execs.  A
 * SEIZEd tracee without PTRACE_O_TRACEEXEC gets no stop and no SIGTRAP at
 * exec (ptrace(2)), so the option is set only where the stop has work:
 *   - a process that has made a thread: when a thread other than the
 *     leader execs, it takes over the leader's tid, the others die, and
 *     only the exec stop (PTRACE_GETEVENTMSG) names the tid that vanished
 *     without an exit to report;
 *   - a view that hides the vDSO (UMV_VIEW_NO_VDSO): the new image's
 *     auxiliary vector is edited at that stop.
 * Options can change only while the tracee is stopped: resume() sets the
 * option as it lets a thread go, and auto-attached children inherit their
 * parent's options as they were when it forked (exec_opt is copied in
 * adopt_child).  It is never cleared again.  A view that starts hiding the
 * vDSO interrupts its processes (do_view_set) so each has it at its next
 * exec; the address of a `syscall` instruction that injections use is
 * looked up each time, as nothing says when an exec replaced the image. */
#define OPTS_BASE (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | \
                   PTRACE_O_TRACECLONE | PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL)
static int exec_wanted(const proc *p) {
    return p->threaded || (views[p->view].flags & UMV_VIEW_NO_VDSO);
}

static void resume(tracee *t, int req, int sig) {
    if (t->p && !t->exec_opt && exec_wanted(t->p) &&
        ptrace(PTRACE_SETOPTIONS, t->tid, 0, (void *)(long)(OPTS_BASE | PTRACE_O_TRACEEXEC)) == 0)
        t->exec_opt = 1;
    t->state = req == PTRACE_SYSCALL && t->state == T_PYTHON ? T_WANT_EXIT : T_RUNNING;
    if (ptrace(req, t->tid, 0, (void *)(long)sig) < 0) return; /* it died: its exit comes */
    if (t->state == T_RUNNING && t->p && needs_filter(t->p)) maybe_interrupt(t->p);
}

/* A call resumed from its seccomp stop to be run by the kernel goes
 * through the filters again (Linux >= 4.8 rechecks after a tracer's
 * seccomp stop, since the tracer may have changed it).  If the notifying
 * filter takes it there, the notifier must let it run: it answers
 * CONTINUE to the first notification of this thread with this number. */
static void let_run(tracee *t, long nr) {
    __atomic_store_n(&t->notif_pass, nr + 1, __ATOMIC_RELEASE);
}

/* Skip the syscall at a seccomp stop: the kernel does not run a syscall whose
 * number the tracer set to -1, and returns whatever the tracer put in rax. */
static void skip_with(tracee *t, struct user_regs_struct *r, int64_t result) {
    __atomic_store_n(&t->notif_pass, 0, __ATOMIC_RELEASE);
    r->orig_rax = (unsigned long long)-1;
    r->rax = (unsigned long long)result;
    ptrace(PTRACE_SETREGS, t->tid, 0, r);
    t->state = T_PYTHON; /* so resume() does not take PTRACE_SYSCALL as a wish */
    resume(t, PTRACE_CONT, 0);
}

/* ------------------------------------------------------------------ */
/* widening the filter of a running process                            */
/*
 * seccomp filters cannot be changed, only stacked, and only by the task
 * itself.  When a module is loaded at run time the view's processes must trap
 * more calls, so we make each of them call seccomp(SET_MODE_FILTER, TSYNC,
 * prog) (TSYNC: all its threads at once).  Two ways in:
 *  - the thread is at a seccomp stop of some call S: turn S into seccomp()
 *    (the kernel re-reads the number after the stop), and at its exit stop
 *    back the instruction pointer up over the 2-byte `syscall` instruction
 *    with rax = S, so S runs again, now through the new filter;
 *  - otherwise PTRACE_INTERRUPT it.  At the interrupt stop it may be in the
 *    middle of a blocking call that returned -ERESTART*; we point rip at a
 *    `syscall` instruction of its vDSO, set orig_rax = -1 so the kernel's
 *    restart logic keeps its hands off, and at the exit stop restore the
 *    registers, doing the restart ourselves (rax = orig_rax, rip -= 2).
 * Forked children inherit filters, so a child's `installed` is its parent's.
 */
static uint64_t find_sysinsn(pid_t pid) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    uint64_t lo = 0, hi = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "[vdso]")) {
            sscanf(line, "%lx-%lx", (unsigned long *)&lo, (unsigned long *)&hi);
            break;
        }
    }
    fclose(f);
    if (!lo || hi - lo > (1 << 16)) return 0;
    size_t n = hi - lo;
    unsigned char *buf = malloc(n);
    uint64_t found = 0;
    if (umv_peek(pid, lo, buf, n) == (int64_t)n) {
        for (size_t i = 0; i + 1 < n; i++)
            if (buf[i] == 0x0f && buf[i + 1] == 0x05) { found = lo + i; break; }
    }
    free(buf);
    return found;
}

/* Writes the filter program below the red zone and points regs at seccomp(). */
static int setup_seccomp_call(tracee *t, struct user_regs_struct *r) {
    view *v = &views[t->p->view];
    size_t plen = v->filter_len * sizeof(struct sock_filter);
    uint64_t base = (t->saved.rsp - 128 - plen - 64) & ~15ULL;
    struct { uint16_t len; uint16_t pad[3]; uint64_t filter; } fprog = {
        (uint16_t)v->filter_len, {0}, base + 32};
    if (umv_poke(t->tid, base + 32, v->filter, plen) != (int64_t)plen) return -1;
    if (umv_poke(t->tid, base, &fprog, sizeof fprog) != (int64_t)sizeof fprog) return -1;
    r->orig_rax = __NR_seccomp;
    r->rax = __NR_seccomp;
    r->rdi = SECCOMP_SET_MODE_FILTER;
    r->rsi = SECCOMP_FILTER_FLAG_TSYNC;
    r->rdx = base;
    return 0;
}

/* at a seccomp stop: replace the call by seccomp(), run the call again after */
static int inject_at_seccomp(tracee *t, struct user_regs_struct *r) {
    t->saved = *r;
    struct user_regs_struct n = *r;
    if (setup_seccomp_call(t, &n) < 0) return -1;
    ptrace(PTRACE_SETREGS, t->tid, 0, &n);
    t->inj_restart = 1;
    t->inj_sig = 0;
    t->state = T_INJECT;
    t->p->inject_busy = 1;
    ptrace(PTRACE_SYSCALL, t->tid, 0, 0);
    return 0;
}

/* at an interrupt stop (not inside a syscall entry) */
static int inject_generic(tracee *t, int sig) {
    struct user_regs_struct n;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->saved) < 0) return -1;
    uint64_t sysinsn = find_sysinsn(t->p->tgid);   /* not kept: see exec_wanted */
    if (!sysinsn) return -1;
    n = t->saved;
    if (setup_seccomp_call(t, &n) < 0) return -1;
    n.orig_rax = (unsigned long long)-1;
    n.rip = sysinsn;
    ptrace(PTRACE_SETREGS, t->tid, 0, &n);
    t->inj_restart = 0;
    t->inj_sig = sig;
    t->state = T_INJECT;
    t->p->inject_busy = 1;
    ptrace(PTRACE_SYSCALL, t->tid, 0, 0);
    return 0;
}

static void inject_failed(tracee *t) {
    stats.injection_failures++;
    umv_event e = {0};
    e.kind = UMV_EV_LOG;
    e.tid = t->tid;
    e.pid = t->p->tgid;
    e.data = 1; /* injection failed */
    push_event(&e);
    /* Do not retry forever: record it as installed so the process runs on
     * with the narrower filter; Python logs the warning. */
    memcpy(t->p->installed, views[t->p->view].trap, UMV_BITMAP_BYTES);
}

static void inject_finish(tracee *t) {
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, t->tid, 0, &r);
    proc *p = t->p;
    p->inject_busy = 0;
    p->interrupted = 0;
    if ((int64_t)r.rax == 0) {
        for (int i = 0; i < UMV_BITMAP_BYTES; i++) p->installed[i] |= views[p->view].trap[i];
        stats.injections++;
    } else {
        inject_failed(t);
    }
    struct user_regs_struct s = t->saved;
    if (t->inj_restart) {
        s.rip -= 2;
        s.rax = s.orig_rax;
    } else if ((long long)s.orig_rax >= 0) {
        long long rv = (long long)s.rax;
        if (rv == -ERESTARTSYS || rv == -ERESTARTNOINTR || rv == -ERESTARTNOHAND) {
            s.rax = s.orig_rax;
            s.rip -= 2;
        } else if (rv == -ERESTART_RESTARTBLOCK) {
            s.rax = __NR_restart_syscall;
            s.rip -= 2;
        }
    }
    ptrace(PTRACE_SETREGS, t->tid, 0, &s);
    t->state = T_RUNNING;
    ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)t->inj_sig);
    if (needs_filter(p)) maybe_interrupt(p); /* the view widened again meanwhile */
}

/* A stop that is not the injected seccomp()'s own came first: a signal
 * (SIGCHLD for a shell in wait4) or a group-stop was pending when the
 * interrupt stop let the thread go.  The kernel would now deliver it with
 * our injected registers (a vDSO rip, orig_rax -1) and build the signal
 * frame right over the filter we wrote below the stack: the program would
 * come back from its handler into the vDSO, and crash.  So put the
 * program's registers back, let the stop happen as without us, and try
 * again later. */
static void inject_abort(tracee *t) {
    ptrace(PTRACE_SETREGS, t->tid, 0, &t->saved);
    t->p->inject_busy = 0;
    t->p->interrupted = 0;
    t->state = T_RUNNING;
}

static void maybe_interrupt(proc *p) {
    if (p->inject_busy || p->interrupted) return;
    for (int b = 0; b < HBUCKETS; b++)
        for (tracee *t = ttab[b]; t; t = t->next)
            if (t->p == p && t->state == T_RUNNING) {
                ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
                p->interrupted = 1;
            }
}

/* ------------------------------------------------------------------ */
/* stops                                                               */

static void hide_vdso(tracee *t) {
    /* At PTRACE_EVENT_EXEC the new image's stack is in place: argc, argv[],
     * NULL, envp[], NULL, then the auxiliary vector.  Turning AT_SYSINFO_EHDR
     * into AT_IGNORE makes libc (and Go, and static binaries) use real
     * syscalls for the clocks, which a time module can then see. */
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0) return;
    uint64_t a = r.rsp, w;
    if (umv_peek(t->tid, a, &w, 8) != 8) return;
    a += 8 * (w + 2);                  /* argc, argv[argc], NULL */
    for (int i = 0; i < 1 << 20; i++, a += 8) {
        if (umv_peek(t->tid, a, &w, 8) != 8) return;
        if (!w) break;
    }
    a += 8;
    uint64_t av[2];
    for (int i = 0; i < 256; i++, a += 16) {
        if (umv_peek(t->tid, a, av, 16) != 16 || av[0] == 0) return;
        if (av[0] == AT_SYSINFO_EHDR_) {
            uint64_t ign = AT_IGNORE_;
            umv_poke(t->tid, a, &ign, 8);
            return;
        }
    }
}

static int same_process_as_us(pid_t pid) {
    if (pid <= 0) return 0;
    if (pid == self_pid) return 1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d", self_pid, pid);
    return access(path, F_OK) == 0;
}

static pid_t pidfd_target(pid_t tid, int fd) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", tid, fd);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    pid_t pid = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Pid: %d", &pid) == 1) break;
    fclose(f);
    return pid;
}

/* The process's pidfd, for pidfd_getfd (opened at the first need). */
static int proc_pidfd(proc *p) {
    int pfd = __atomic_load_n(&p->pidfd, __ATOMIC_ACQUIRE);
    if (pfd < 0) {  /* the tracer and the notifier may both get here */
        int fresh = (int)syscall(SYS_pidfd_open, p->tgid, 0), none = -1;
        if (fresh < 0) return -1;
        if (__atomic_compare_exchange_n(&p->pidfd, &none, fresh, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) pfd = fresh;
        else { close(fresh); pfd = none; }
    }
    return pfd;
}

/* ------------------------------------------------------------------ */
/* path fast path                                                      */

/* Per syscall: where its paths are (p0/p1, their dirfds d0/d1, -1 none),
 * whether the fast path may look at it (ok), whether a pass may run it on
 * the host (pass), and whether it follows a symlink as last component of
 * its first path: fmode 0 never, 1 always (or cannot tell), 2 unless
 * arg[farg] & fmask, 3 only if arg[farg] & fmask, 4 open flags in
 * arg[farg] (O_NOFOLLOW, or O_CREAT|O_EXCL, do not follow). */
typedef struct {
    signed char p0, d0, p1, d1, ok, pass, fmode, farg;
    uint32_t fmask;
    int buf_i, size, size_i, str_i;  /* a call that only reads (buf_i > -2) */
    int exec;                        /* execve, execveat: see exec_outside */
    int fd_i;                        /* a call on an fd (no path): see fd_class */
} path_rule;
static path_rule prules[UMV_BITMAP_BYTES * 8];

#define prefix_of umv_prefix_of

/* Is host path p the view's business: at, under or above a 'C' prefix (or,
 * with bases set, in a 'B' one; see umv_in_paths for UMV_WALK_BASE)?  p is
 * canonical (the kernel's own).  The shim asks the same (umvshm.h). */
static int in_view(const view *v, const char *p, int bases) {
    return umv_in_paths(v->paths, (size_t)v->paths_len, p, bases);
}

static int fd_path(int fd, char *out, size_t len) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    close(fd);
    if (n <= 0 || out[0] != '/') return -1;
    out[n] = 0;
    return 0;
}

#define RESOLVE_NO_MAGICLINKS_ 0x02
#define RESOLVE_NO_SYMLINKS_ 0x04
#define RESOLVE_BENEATH_ 0x08

/* openat2(dirfd, path, {flags, 0, resolve}): an fd, or -1 and errno. */
static long open_how(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
    struct { uint64_t flags, mode, resolve; } how = {flags, 0, resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Would the kernel, walking rest from the pass's host directory, meet
 * nothing that a view walking it from the guest directory would see
 * differently?  Both walks are the same as long as they stay below the
 * directory: no '..' above it, no absolute symlink, no relative one that
 * climbs out, no magic /proc link (openat2 RESOLVE_BENEATH refuses each
 * of these with EXDEV or ELOOP).  A walk that ends in ENOENT or ENOTDIR
 * stayed below up to there, and the call run by the kernel fails (or
 * creates its name) at the same place.  follow: the last component is
 * followed when a symlink; checking with it followed covers both.  Any
 * other answer (EXDEV, ELOOP, EACCES...) goes to Python. */
static int pass_beneath(const struct pass *ps, const char *rest, int follow) {
    while (*rest == '/') rest++;
    if (!*rest) return 1;
    long fd = open_how(ps->hfd, rest, O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW),
                       RESOLVE_BENEATH_ | RESOLVE_NO_MAGICLINKS_);
    if (fd >= 0) { close((int)fd); return 1; }
    return errno == ENOENT || errno == ENOTDIR;
}

/* The pass whose directory (guest side, or host side) holds p, the
 * deepest; -1 none. */
static int pass_of(const view *v, const char *p, int host) {
    int best = -1;
    size_t blen = 0;
    for (int i = 0; i < v->npasses; i++) {
        const struct pass *ps = &v->passes[i];
        if (ps->lfd >= 0) continue;  /* an overlay: overlay_of */
        const char *d = host ? ps->host : ps->guest;
        size_t n = host ? ps->hlen : ps->glen;
        if (n >= blen && prefix_of(d, n, p)) { best = i; blen = n; }
    }
    return best;
}

/* Where does (dirfd, path) lead?  PATH_PY: to the view's business (or we
 * cannot tell): Python serves the call.  PATH_OUT: outside everything the
 * view changes: the kernel runs the call as it is.  PATH_PASS + k: below
 * pass k, as a relative path the kernel resolves to the same file: the
 * kernel runs it as it is.  PATH_MOVE + k: below pass k, written as a guest
 * path: the kernel runs it on the host path left in host[].  host is NULL
 * for calls no pass may run (chdir, statfs...): those go to Python when
 * below a pass.
 *
 * Outside is asked of the kernel, not of the text: open the path O_PATH
 * here (our file system view is the tracee's, outside the view's mounts)
 * and read back where it landed, so symlinks and '..' that would lead into
 * a mount are seen.  A symlink as last component is checked both as itself
 * and followed (the call may do either).  Anything unclear goes to Python. */
enum { PATH_PY = -1, PATH_OUT = 0, PATH_PASS = 1, PATH_MOVE = 0x1001 };  /* & 0xfff: 0 or 1 + k */

static __thread char last_real[PATH_MAX];  /* where the last PATH_OUT path landed; "" = nowhere */

#define READS_OPEN 2  /* see overlay_class */

/* The overlay (a cow mount with nothing deleted yet) that holds p: its
 * guest directory (host 0), or one of its layers (host 1, a cwd or
 * dirfd); *rel is what follows in p.  -1: none. */
/* UMV_NO_LAYERS while path_fast judges a call that only names files (a
 * pass may run it), else 0: see umv_in_paths.  Where the walk starts (a
 * cwd or dirfd in a layer) is judged with the layers all the same. */
static __thread int names_only;

static int overlay_of(const view *v, const char *p, int host, const char **rel) {
    for (int i = 0; i < v->npasses; i++) {
        const struct pass *ps = &v->passes[i];
        if (ps->lfd < 0) continue;
        if (!host && prefix_of(ps->guest, ps->glen, p)) { *rel = p + ps->glen; return i; }
        if (host && prefix_of(ps->host, ps->hlen, p)) { *rel = p + ps->hlen; return i; }
        if (host && prefix_of(ps->lower, ps->llen, p)) { *rel = p + ps->llen; return i; }
    }
    return -1;
}

/* Is the host path a call lands on the view's business?  With names_only,
 * a layer is only if it is an overlay's (see umv_in_paths). */
static int lands_in_view(const view *v, const char *p) {
    const char *rel;
    return in_view(v, p, names_only) || (names_only && v->npasses && overlay_of(v, p, 1, &rel) >= 0);
}

/* A call that only reads (stat, access, getxattr...; reads == 1), or an
 * open for reading only of a regular file (reads == READS_OPEN), of rest
 * below overlay k: the file is the upper layer's if it is there, else the lower
 * layer's, as long as no name was deleted (whiteouts; the module offers
 * the overlay only then) and both walks meet no symlink and no '..' (the
 * view could resolve those across the layers).  The call then runs on the
 * layer's host path (PATH_MOVE + k, served here: one stop, no Python).
 * Anything else, and every call that changes something (a copy-up), is
 * the module's. */
static int overlay_class(const view *v, int k, const char *rest, int reads, char *host, size_t hostlen) {
    const struct pass *ps = &v->passes[k];
    if (!reads || !host) return PATH_PY;
    struct stat st;
    while (*rest == '/') rest++;
    for (const char *c = rest; *c;) {
        size_t len = umv_span(c);
        if (len == 2 && c[0] == '.' && c[1] == '.') return PATH_PY;
        c += len;
        while (*c == '/') c++;
    }
    const char *walk = *rest ? rest : ".";
    const uint64_t resolve = RESOLVE_BENEATH_ | RESOLVE_NO_SYMLINKS_;
    const char *layer = ps->host;
    size_t llen = ps->hlen;
    long fd = open_how(ps->hfd, walk, O_PATH | O_CLOEXEC, resolve);
    if (fd < 0) {
        if (errno != ENOENT) return PATH_PY;
        fd = open_how(ps->lfd, walk, O_PATH | O_CLOEXEC, resolve);
        if (fd < 0 && errno != ENOENT) return PATH_PY;
        layer = ps->lower;
        llen = ps->llen;
    }
    if (reads == READS_OPEN && (fd < 0 || fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        /* a directory is opened as a listing, a missing file may be
         * created: the module's */
        if (fd >= 0) close((int)fd);
        return PATH_PY;
    }
    if (fd >= 0) close((int)fd);
    if (llen + 1 + strlen(rest) + 1 > hostlen) return PATH_PY;
    memcpy(host, layer, llen);
    host[llen] = '/';
    strcpy(host + llen + 1, rest);
    return PATH_MOVE + k;
}

/* Where a relative path starts: the directory of the tracee's cwd or
 * dirfd, as a path (readlink of /proc/PID/cwd or /proc/PID/fd/N, about
 * 4 µs, as much as the rest of the check) and as an O_PATH fd of ours on
 * the same directory.  Both are kept per process and used again while
 * they are known to be right:
 * - a dirfd: while kcmp(KCMP_FILE) says the tracee's fd N is still the
 *   open file we hold a twin of (under 1 µs; closing and reopening N
 *   gives a new file, so a reused number misses);
 * - the cwd: while the process has one thread (a thread sharing it could
 *   chdir while this one is in a call), and no chdir, fchdir or chroot
 *   was made in the view since (path_gen: the core traps fchdir for
 *   this; a chdir bumps it at entry, and the single thread is inside it).
 * The path can go stale when the directory, or one above it, is renamed;
 * renames made in the view bump path_gen too.  A rename outside the view
 * leaves it stale, which matters only where the old and new places differ
 * for the view (one of them a mount point or inside one): the check
 * would then judge the call by where the directory was.  That race is
 * the general check's too, over a shorter time; docs/design.md says so.
 * Returns the path length (the path in out), or -1; *dfd is our fd, or
 * -1 when nothing is cached. */
static unsigned path_gen = 1;
static int dc_fds;                 /* fds the caches hold, all processes */
#define DC_MAX_FDS 256

static void dc_drop(struct dircache *c) {
    if (!c->path) return;
    close(c->fd);
    dc_fds--;
    free(c->path);
    memset(c, 0, sizeof *c);
}

static void note_call(long nr) {
    int moves = nr == SYS_chdir || nr == SYS_fchdir || nr == SYS_chroot || nr == SYS_rename ||
                nr == SYS_renameat || nr == SYS_renameat2;
    if (moves) __atomic_add_fetch(&path_gen, 1, __ATOMIC_ACQ_REL);
    /* the shim's caches (umvshm.h: dgen) also hold that a directory, or
     * a last name, is no symlink: a name removed may come back as one */
    if (shm && (moves || nr == SYS_rmdir || nr == SYS_unlink || nr == SYS_unlinkat))
        __atomic_add_fetch(&shm->dgen, 1, __ATOMIC_ACQ_REL);
}

/* A module may change files at any call it serves (a cow mount's copy-up
 * makes directories in its upper layer), before it answers or when the
 * kernel runs the call it rewrote: the shim's caches of what a layer holds
 * (umvshim.c: overlay_held) go at each of those moments, so that a
 * lookup made while the module works is not kept after it. */
static void shim_forget(void) {
    if (shm) __atomic_add_fetch(&shm->dgen, 1, __ATOMIC_ACQ_REL);
}

/* Set while path_fast judges a chdir or chroot: the cwd it reads is the
 * one the call is about to leave, so it must not be kept (path_gen was
 * bumped at the call's entry, and nothing bumps it when the call ends). */
static __thread int cwd_moving;

static ssize_t dir_of(tracee *t, int dirfd, char *out, int *dfd) {
    proc *p = t->p;
    int cwd = dirfd == AT_FDCWD, single = p->nthreads == 1 && !cwd_moving;
    unsigned gen = __atomic_load_n(&path_gen, __ATOMIC_ACQUIRE);
    *dfd = -1;
    for (int i = cwd ? 0 : 1; i < (cwd ? 1 : 3); i++) {
        struct dircache *c = &p->dc[i];
        if (!c->path || c->tfd != dirfd || c->gen != gen) continue;
        if (cwd ? !single : syscall(SYS_kcmp, p->tgid, self_pid, KCMP_FILE, dirfd, c->fd) != 0)
            continue;
        memcpy(out, c->path, c->len + 1);
        *dfd = c->fd;
        return (ssize_t)c->len;
    }
    char link[64];
    int fd = -1;
    if (dc_fds < DC_MAX_FDS && (!cwd || single)) {
        /* our twin first, then its path: the two agree even if the
         * tracee's other threads close or reopen the number meanwhile */
        if (cwd) {
            snprintf(link, sizeof link, "/proc/%d/cwd", t->tid);
            fd = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
        } else if (dirfd >= 0) {
            int pfd = proc_pidfd(p);
            fd = pfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pfd, dirfd, 0);
        }
    }
    if (fd >= 0) snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    else if (cwd) snprintf(link, sizeof link, "/proc/%d/cwd", t->tid);
    else snprintf(link, sizeof link, "/proc/%d/fd/%d", p->tgid, dirfd);
    ssize_t b = readlink(link, out, PATH_MAX - 1);
    if (b <= 0 || out[0] != '/') {
        if (fd >= 0) close(fd);
        return -1;
    }
    out[b] = 0;
    if (fd < 0) return b;
    struct dircache *c = &p->dc[cwd ? 0 : 1 + (p->dc_next++ & 1)];
    dc_drop(c);
    c->path = malloc((size_t)b + 1);
    if (!c->path) { close(fd); return b; }
    memcpy(c->path, out, (size_t)b + 1);
    c->len = (size_t)b;
    c->tfd = dirfd;
    c->fd = fd;
    c->gen = gen;
    dc_fds++;
    *dfd = fd;
    return b;
}

/* The cheap answer for most paths: one openat2 with RESOLVE_NO_SYMLINKS.
 * When the kernel walks full without meeting a symlink (nor a /proc magic
 * link, which counts as one), '..' and '.' mean what the text says, so the
 * text, made canonical by hand, is where the walk lands: no readlink of the
 * opened fd is needed.  Two syscalls instead of the four of the general
 * check (open, fstat, readlink of /proc/self/fd/N, close); the walk is the
 * kernel's, so a symlink anywhere, the last component included, ends it
 * with ELOOP and the general check takes over.
 *
 * A relative path is walked from dfd, our twin of its directory (dir_of),
 * and full is that directory's path joined with it.
 *
 * ENOENT: the walk stopped at a missing component, before any symlink.
 * Which one is not known, and a mount point below the missing name would
 * make it exist in the view; so this answers only when no mount prefix
 * shares even its first component with the path.  PATH_PY and PATH_OUT
 * are answers; LEX_UNKNOWN, that the general check must tell. */
#define LEX_UNKNOWN (-2)
static int lexical_class(const view *v, int dfd, const char *walk, const char *full) {
    long fd = open_how(dfd, walk, O_PATH | O_CLOEXEC, RESOLVE_NO_SYMLINKS_);
    int missing = 0;
    if (fd >= 0) close((int)fd);
    else if (errno == ENOENT) missing = 1;
    else return LEX_UNKNOWN;
    /* the canonical text: drop "" and ".", and ".." with its parent */
    static __thread char canon[2 * PATH_MAX + 2];
    int dotdot;
    size_t w = umv_canon(full, "", canon, sizeof canon, &dotdot);
    if (!w) return LEX_UNKNOWN;
    if (lands_in_view(v, canon)) return PATH_PY;
    if (missing) {
        if (dotdot) return LEX_UNKNOWN;  /* the text no longer shows where it stopped */
        for (const char *e = v->paths; e < v->paths + v->paths_len; e += strlen(e) + 1) {
            const char *pre = e + 1;
            if (e[0] != 'C') continue;
            size_t n = umv_span(pre + 1);
            if (n && !strncmp(pre + 1, canon + 1, n) && (canon[1 + n] == 0 || canon[1 + n] == '/'))
                return LEX_UNKNOWN;
        }
        return PATH_OUT;
    }
    memcpy(last_real, canon, w + 1);
    return PATH_OUT;
}

/* The tracee's open file fd, for a call on the file itself (fchmod, a
 * path call with an empty or NULL path, a /proc/self/fd/N link followed):
 * PATH_OUT when it is outside everything the view changes (the kernel
 * runs the call), PATH_PASS + k below pass k when may_pass (the file is
 * the host file either way), else LEX_UNKNOWN: the module's (a file in a
 * cow mount's lower layer must be copied up first, one in a read-only
 * mount is EROFS).  Pipes, sockets and anonymous files are the module's
 * too: the vfs may serve some streams itself. */
static int fd_class(tracee *t, const view *v, int fd, int may_pass) {
    char link[64], target[PATH_MAX];
    if (fd < 0) return LEX_UNKNOWN;
    snprintf(link, sizeof link, "/proc/%d/fd/%d", t->p->tgid, fd);
    ssize_t b = readlink(link, target, sizeof target - 1);
    if (b <= 0 || target[0] != '/') return LEX_UNKNOWN;
    target[b] = 0;
    int k = v->npasses ? pass_of(v, target, 1) : -1;
    if (k >= 0) return may_pass ? PATH_PASS + k : LEX_UNKNOWN;
    if (in_view(v, target, 1)) return LEX_UNKNOWN;
    memcpy(last_real, target, (size_t)b + 1);
    return PATH_OUT;
}

/* /proc/self/fd/N (also /proc/thread-self/fd/N, /proc/PID/fd/N with the
 * caller's own pid): the caller's open file N, through its magic link.
 * glibc goes this way for fchmodat(AT_SYMLINK_NOFOLLOW) and fchownat on
 * an O_PATH fd (tar -x sets every directory's mode so), and /proc is the
 * view's business (its mount lists), so each such call would reach
 * Python.  When file N is outside everything the view changes, the kernel
 * runs the call as it is; below a pass, so may a call that follows the
 * link to the file (not readlink or lstat of the link itself, which the
 * module shows with the guest path).  Anything else (another process's
 * fds, a path below the fd, a pipe or socket): LEX_UNKNOWN, the usual
 * road (Python). */
static int proc_fd_class(tracee *t, const view *v, const char *path, int follow, int may_pass) {
    const char *p = path + 6;
    if (!strncmp(p, "self/", 5)) p += 5;
    else if (!strncmp(p, "thread-self/", 12)) p += 12;
    else {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || *end != '/' || (pid != t->tid && pid != t->p->tgid)) return LEX_UNKNOWN;
        p = end + 1;
    }
    if (strncmp(p, "fd/", 3)) return LEX_UNKNOWN;
    p += 3;
    char *end;
    long fd = strtol(p, &end, 10);
    if (end == p || *end || *p == '-' || *p == '+' || fd > INT_MAX) return LEX_UNKNOWN;
    return fd_class(t, v, (int)fd, follow && may_pass);
}

static int path_class_text(tracee *t, const view *v, const char *path, size_t n, long dirfd,
                           int follow, int reads, char *host, size_t hostlen) {
    static __thread char full[2 * PATH_MAX + 2], real[PATH_MAX];
    int dfd = -1;
    last_real[0] = 0;
    if (path[0] == '/') {
        if (!strncmp(path, "/proc/", 6)) {
            int c = proc_fd_class(t, v, path, follow, host != NULL);
            if (c != LEX_UNKNOWN) return c;
        }
        const char *orel;
        int k = v->npasses ? overlay_of(v, path, 0, &orel) : -1;
        if (k >= 0) return overlay_class(v, k, orel, reads, host, hostlen);
        k = v->npasses ? pass_of(v, path, 0) : -1;
        if (k >= 0) {
            const struct pass *ps = &v->passes[k];
            const char *rest = path + ps->glen;
            if (!host || !pass_beneath(ps, rest, follow)) return PATH_PY;
            if (ps->hlen + strlen(rest) + 1 > hostlen) return PATH_PY;
            memcpy(host, ps->host, ps->hlen);
            strcpy(host + ps->hlen, rest);
            return PATH_MOVE + k;
        }
        memcpy(full, path, n + 1);
    } else {
        ssize_t b = dir_of(t, (int)dirfd, full, &dfd);
        if (b <= 0) return PATH_PY;
        const char *orel;
        int o = v->npasses ? overlay_of(v, full, 1, &orel) : -1;
        if (o >= 0) {
            /* relative to a directory of an overlay's layer: its path in
             * the mount, then the path */
            static __thread char rest[2 * PATH_MAX + 2];
            snprintf(rest, sizeof rest, "%s/%s", orel, path);
            return overlay_class(v, o, rest, reads, host, hostlen);
        }
        int k = v->npasses ? pass_of(v, full, 1) : -1;
        if (k < 0 && in_view(v, full, UMV_WALK_BASE)) return PATH_PY;
        full[b] = '/';
        memcpy(full + b + 1, path, n + 1);
        if (k >= 0) {
            /* relative to a directory below a pass: the kernel walks it
             * from there, as the view would (for calls a pass may run) */
            const struct pass *ps = &v->passes[k];
            return host && pass_beneath(ps, full + ps->hlen, follow) ? PATH_PASS + k : PATH_PY;
        }
    }
    int lex = dfd >= 0 ? lexical_class(v, dfd, path, full) : lexical_class(v, AT_FDCWD, full, full);
    if (lex != LEX_UNKNOWN) return lex;
    int fd = open(full, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) return PATH_PY;
        /* A name that is not there: the kernel's walk stops at the first
         * missing component (or creates it, if it is the last).  The view
         * sees the same unless a mount is at or below that component: find
         * the deepest directory that exists (a few levels up at most) and
         * ask about its real path plus the first missing name. */
        char name[NAME_MAX + 2];
        for (int up = 0;; up++) {
            size_t len = strlen(full);
            while (len > 1 && full[len - 1] == '/') full[--len] = 0;
            char *slash = strrchr(full, '/');
            if (!slash || up == 8 || strlen(slash + 1) > NAME_MAX) return PATH_PY;
            snprintf(name, sizeof name, "%s", slash + 1);
            if (!strcmp(name, "..") || !strcmp(name, ".")) return PATH_PY;
            if (slash == full) slash[1] = 0; else slash[0] = 0;
            fd = open(full, O_PATH | O_CLOEXEC);
            if (fd >= 0) break;
            if (errno != ENOENT) return PATH_PY;
            /* a dangling symlink on the way may lead into a mount */
            fd = open(full, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) { close(fd); return PATH_PY; }
        }
        if (fd_path(fd, real, sizeof real - NAME_MAX - 2) < 0) return PATH_PY;
        size_t rl = strlen(real);
        snprintf(real + rl, sizeof real - rl, "%s%s", rl > 1 ? "/" : "", name);
        return lands_in_view(v, real) ? PATH_PY : PATH_OUT;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) { close(fd); return PATH_PY; }
    if (fd_path(fd, real, sizeof real) < 0 || lands_in_view(v, real)) return PATH_PY;
    if (S_ISLNK(st.st_mode)) {
        fd = open(full, O_PATH | O_CLOEXEC);
        if (fd < 0 || fd_path(fd, real, sizeof real) < 0 || lands_in_view(v, real)) return PATH_PY;
    }
    memcpy(last_real, real, strlen(real) + 1);
    return PATH_OUT;
}

static int path_class(tracee *t, const view *v, uint64_t ptr, long dirfd, int follow, int reads,
                      char *host, size_t hostlen) {
    static __thread char path[PATH_MAX];
    last_real[0] = 0;
    int64_t n = ptr ? umv_peek_string(t->tid, ptr, path, sizeof path) : 0;
    if (n < 0) return PATH_PY;
    if (n == 0) {
        /* NULL (utimensat) or "" (AT_EMPTY_PATH, else ENOENT): the dirfd's
         * own file, which a call that only reads (fstat) may read as the
         * kernel finds it */
        if ((int)dirfd == AT_FDCWD || reads) return PATH_OUT;
        int c = fd_class(t, v, (int)dirfd, host != NULL);
        return c == LEX_UNKNOWN ? PATH_PY : c;
    }
    return path_class_text(t, v, path, (size_t)n, dirfd, follow, reads, host, hostlen);
}

/* May the kernel exec file (outside every mount) as it is?  Not when the
 * exec needs something the view changes: a #! interpreter, or an ELF
 * interpreter (PT_INTERP), that is not outside too; the kernel would look
 * for it on the host, so the module starts those itself.  Read as vfs
 * reads them (the first line of 256 bytes; one level of #!). */
static int exec_outside(tracee *t, const view *v, const char *file) {
    char head[257], interp[PATH_MAX];
    interp[0] = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1;  /* the kernel fails the same way */
    ssize_t n = pread(fd, head, 256, 0);
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        head[n] = 0;
        char *p = head + 2;
        while (*p == ' ' || *p == '\t') p++;
        size_t len = strcspn(p, " \t\n");
        if (len < sizeof interp) { memcpy(interp, p, len); interp[len] = 0; }
    } else if (n >= 64 && !memcmp(head, "\177ELF", 4) && head[4] == 2) {
        uint64_t phoff;
        uint16_t phentsize, phnum;
        memcpy(&phoff, head + 32, 8);
        memcpy(&phentsize, head + 54, 2);
        memcpy(&phnum, head + 56, 2);
        unsigned char ph[64];
        for (int i = 0; i < phnum && i < 256 && phentsize >= 56 && phentsize <= sizeof ph; i++) {
            if (pread(fd, ph, phentsize, (off_t)(phoff + (uint64_t)i * phentsize)) != phentsize) break;
            uint32_t type;
            uint64_t off, size;
            memcpy(&type, ph, 4);
            if (type != 3) continue;  /* PT_INTERP */
            memcpy(&off, ph + 8, 8);
            memcpy(&size, ph + 32, 8);
            if (size >= sizeof interp) size = sizeof interp - 1;
            ssize_t got = pread(fd, interp, size, (off_t)off);
            interp[got > 0 ? got : 0] = 0;
            break;
        }
    }
    close(fd);
    if (interp[0] != '/') return 1;  /* none, or relative: the kernel's business */
    return path_class_text(t, v, interp, strlen(interp), AT_FDCWD, 1, 0, NULL, 0) == PATH_OUT;
}

static int follows(const path_rule *pr, const uint64_t *a) {
    uint32_t f = (pr->farg >= 0 && pr->farg < 6) ? (uint32_t)a[(int)pr->farg] : 0;
    switch (pr->fmode) {
    case 0: return 0;
    case 2: return !(f & pr->fmask);
    case 3: return !!(f & pr->fmask);
    case 4: return !(f & O_NOFOLLOW) && (f & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
    default: return 1;
    }
}

/* The path fast path for a claimed call: FAST_PY (Python serves it),
 * FAST_RUN (the kernel runs it as it is), FAST_MOVE: the kernel runs it
 * with the path arguments listed in moved[] (argument index, -1 = none)
 * pointing at the host paths in pass_hosts[], or FAST_READ: a call that
 * only reads, with its one path moved, for serve_read. */
enum { FAST_PY, FAST_RUN, FAST_MOVE, FAST_READ };
static __thread char pass_hosts[2][PATH_MAX];

static int path_fast(tracee *t, const struct user_regs_struct *r, int moved[2]) {
    long nr = (long)r->orig_rax;
    if (nr < 0 || nr >= UMV_BITMAP_BYTES * 8 || !prules[nr].ok) return FAST_PY;
    const path_rule *pr = &prules[nr];
    const view *v = &views[t->p->view];
    uint64_t a[6] = {r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9};
    if (pr->p0 < 0) {  /* a call on an fd */
        int c = fd_class(t, v, (int)a[pr->fd_i], 1);
        return c == LEX_UNKNOWN ? FAST_PY : FAST_RUN;
    }
    int pass = pr->pass && v->npasses;
    int reads = pr->buf_i > -2;
    cwd_moving = nr == SYS_chdir || nr == SYS_chroot;
    names_only = pr->pass ? UMV_NO_LAYERS : 0;
    if (!reads && pr->fmode == 4 && pr->farg >= 0 && pr->farg < 6 &&
        !((uint32_t)a[(int)pr->farg] & (O_ACCMODE | O_CREAT | O_TRUNC | O_DIRECTORY | O_PATH)))
        reads = READS_OPEN;  /* open(O_RDONLY): an overlay may run it on a layer's file */
    int c0 = path_class(t, v, a[(int)pr->p0], pr->d0 >= 0 ? (long)(int)a[(int)pr->d0] : AT_FDCWD,
                        follows(pr, a), reads, pass ? pass_hosts[0] : NULL, PATH_MAX);
    if (c0 == PATH_PY) return FAST_PY;
    if (pr->exec && c0 == PATH_OUT && last_real[0]) {
        char file[PATH_MAX];
        memcpy(file, last_real, sizeof file);
        if (!exec_outside(t, v, file)) return FAST_PY;
    }
    int c1 = PATH_OUT;
    if (pr->p1 >= 0) {
        c1 = path_class(t, v, a[(int)pr->p1], pr->d1 >= 0 ? (long)(int)a[(int)pr->d1] : AT_FDCWD,
                        0, reads, pass ? pass_hosts[1] : NULL, PATH_MAX);
        if (c1 == PATH_PY) return FAST_PY;
        /* two names (rename, link): both outside, or both below the same
         * pass; across a mount boundary the kernel would say EXDEV where
         * the host sees one file system */
        if ((c0 & 0xfff) != (c1 & 0xfff)) return FAST_PY;
    }
    moved[0] = c0 >= PATH_MOVE ? pr->p0 : -1;
    moved[1] = c1 >= PATH_MOVE ? pr->p1 : -1;
    if (moved[0] >= 0 && moved[1] < 0 && pr->buf_i > -2) return FAST_READ;
    return moved[0] >= 0 || moved[1] >= 0 ? FAST_MOVE : FAST_RUN;
}

/* Run a FAST_READ call here on its host path (pass_hosts[0]), with the
 * tracee's other arguments; its result, or -errno. */
static int64_t serve_read(tracee *t, long nr, const uint64_t *a) {
    const path_rule *pr = &prules[nr];
    return umv_serve_here(t->tid, nr, a, pr->p0, pass_hosts[0], pr->d0, pr->str_i, pr->buf_i,
                          pr->size, pr->size_i);
}

int umv_set_path_rules(const int32_t *rules, int n) {
    if (n > UMV_BITMAP_BYTES * 8) return -EINVAL;
    memset(prules, 0, sizeof prules);
    for (int i = 0; i < n; i++) {
        path_rule *pr = &prules[i];
        const int32_t *x = rules + UMV_PATH_RULE_INTS * i;
        pr->p0 = x[0]; pr->d0 = x[1]; pr->p1 = x[2]; pr->d1 = x[3];
        pr->fd_i = x[14] >= 0 && x[14] < 6 ? x[14] : -1;
        pr->ok = x[4] > 0 && (pr->p0 >= 0 || pr->fd_i >= 0) && pr->p0 < 6 && pr->p1 < 6 &&
                 pr->d0 < 6 && pr->d1 < 6;
        pr->pass = x[5] > 0;
        pr->fmode = x[6]; pr->farg = x[7]; pr->fmask = (uint32_t)x[8];
        pr->buf_i = x[9]; pr->size = x[10]; pr->size_i = x[11]; pr->str_i = x[12];
        pr->exec = x[13];
    }
    return 0;
}

int64_t umv_serve_here(int tid, long nr, const uint64_t *args, int path_i, const char *host,
                       int dirfd_i, int str_i, int buf_i, int64_t size, int size_i) {
    uint64_t a[6];
    char name[256];
    memcpy(a, args, sizeof a);
    if (path_i < 0 || path_i > 5) return -EINVAL;
    a[path_i] = (uint64_t)(uintptr_t)host;
    if (dirfd_i >= 0 && dirfd_i < 6) a[dirfd_i] = (uint64_t)(int64_t)AT_FDCWD;
    if (str_i >= 0 && str_i < 6) {
        int64_t n = umv_peek_string(tid, args[str_i], name, sizeof name);
        if (n < 0) return n == -ENAMETOOLONG ? -ERANGE : n;
        a[str_i] = (uint64_t)(uintptr_t)name;
    }
    if (size_i >= 0 && size_i < 6) size = (int64_t)args[size_i];
    if (size < 0 || size > (1 << 20)) return -E2BIG;
    void *buf = NULL;
    if (buf_i >= 0 && buf_i < 6 && args[buf_i]) {
        buf = calloc(1, size ? size : 1);
        if (!buf) return -ENOMEM;
        a[buf_i] = (uint64_t)(uintptr_t)buf;
    }
    long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    int64_t res = r < 0 ? -errno : r;
    if (res >= 0 && buf) {
        size_t len = size_i >= 0 ? (size_t)res : (size_t)size;
        if (len > (size_t)size) len = size;
        if (len && umv_poke(tid, args[buf_i], buf, len) != (int64_t)len) res = -EFAULT;
    }
    free(buf);
    return res;
}

int umv_stat_beneath(int dirfd, const char *path, uint64_t *out) {
    int fd = (int)open_how(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC,
                           RESOLVE_BENEATH_ | RESOLVE_NO_SYMLINKS_);
    if (fd < 0) return -errno;
    struct stat st;
    int r = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (r < 0) return -e;
    out[0] = st.st_mode; out[1] = st.st_ino; out[2] = st.st_dev; out[3] = st.st_nlink;
    return 0;
}

/* ------------------------------------------------------------------ */
/* stat calls answered in C (Claims.stat_owner)                        */
/*
 * A fake root shows every file with an owner of its choosing; the files it
 * has records for (chowned, mknod'ed...) are few.  For the others the answer
 * is the kernel's with uid and gid replaced, and that is done here, at the
 * seccomp stop: one stop and no Python for `ls -l`, tar and find.  The
 * module lists the keys of its recorded files (umv_stat_table_set); a stat
 * of one of them, or any case not handled here, goes on to Python.
 *
 * The tables are touched by Python from any thread, hence the lock.
 */
#define STAT_TABLES 4096   /* one per module instance that asks (unit tests make many) */
typedef struct { uint64_t dev, ino; int state; } skey;   /* state 0 empty, 1 full, 2 deleted */
static struct { int used; skey *k; size_t cap, n, dead; } stables[STAT_TABLES];
static pthread_mutex_t slock = PTHREAD_MUTEX_INITIALIZER;

static size_t skey_hash(uint64_t dev, uint64_t ino) {
    uint64_t h = (ino ^ (dev * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
    return (size_t)(h ^ (h >> 31));
}

/* the slot of (dev, ino), or the free slot where it would go */
static skey *sfind(int table, uint64_t dev, uint64_t ino) {
    size_t cap = stables[table].cap, i = skey_hash(dev, ino) & (cap - 1);
    skey *first_dead = NULL;
    for (;;) {
        skey *e = &stables[table].k[i];
        if (e->state == 0) return first_dead ? first_dead : e;
        if (e->state == 2) { if (!first_dead) first_dead = e; }
        else if (e->dev == dev && e->ino == ino) return e;
        i = (i + 1) & (cap - 1);
    }
}

static int sgrow(int table) {
    size_t cap = stables[table].cap ? stables[table].cap * 2 : 64;
    skey *old = stables[table].k;
    size_t oldcap = stables[table].cap;
    skey *k = calloc(cap, sizeof *k);
    if (!k) return -ENOMEM;
    stables[table].k = k;
    stables[table].cap = cap;
    stables[table].n = stables[table].dead = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].state == 1) {
            *sfind(table, old[i].dev, old[i].ino) = old[i];
            stables[table].n++;
        }
    free(old);
    return 0;
}

/* Tell the shim what views[viewno] says now (under slock).  The sequence
 * count lets it read the entry whole (umvshim.c, view_cfg). */
static void shm_publish(int viewno) {
    if (!shm) return;
    struct umv_shm_view *sv = &shm->view[viewno];
    __atomic_store_n(&sv->seq, sv->seq + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    sv->on = views[viewno].stat_table != 0;
    memcpy(sv->cfg, views[viewno].stat_cfg, sizeof sv->cfg);
    sv->flags = (uint32_t)views[viewno].flags;
    sv->ids_on = views[viewno].ids_on;
    memcpy(sv->ids, views[viewno].ids, sizeof sv->ids);
    sv->nports = views[viewno].nports;
    memcpy(sv->ports, views[viewno].ports, sizeof sv->ports);
    memcpy(sv->socks, views[viewno].socks, sizeof sv->socks);
    __atomic_store_n(&sv->seq, sv->seq + 1, __ATOMIC_RELEASE);
}

/* Path changes Python asked for that the tracer has not published yet,
 * per view (under plock).  A module changes its claims from a handler the
 * tracer thread runs (a cow mount's first deletion ends its overlay), and
 * the command that publishes them waits in the queue until the tracer has
 * resumed that caller: meanwhile the caller's shim would still see the
 * overlay and read a deleted file's layer (seen: a listing that still
 * held the unlinked name).  So the entry is marked as being rewritten
 * (an odd sequence count: the shim sends its calls the usual way) from
 * the moment the change is asked for until the last one asked is out. */
static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static unsigned paths_pending[UMV_MAX_VIEWS];

/* Tell the shim the view's path prefixes and the calls it may run when a
 * path is outside them all (tracer thread; calls NULL: none).  Prefixes
 * that do not fit: none. */
static void shm_publish_paths(int viewno, const unsigned char *calls) {
    if (!shm) return;
    pthread_mutex_lock(&plock);
    const view *v = &views[viewno];
    struct umv_shm_paths *sp = &shm->vpaths[viewno];
    /* the prefixes, then 'G' guest, 'H' host for each plain pass, and
     * 'O' guest, 'U' upper, 'L' lower for each overlay */
    size_t len = v->paths ? (size_t)v->paths_len : 0;
    for (int i = 0; i < v->npasses; i++) {
        const struct pass *ps = &v->passes[i];
        len += ps->glen + 2 + ps->hlen + 2 + (ps->lfd < 0 ? 0 : ps->llen + 2);
    }
    int on = calls && v->paths && v->paths_len > 0 && len <= UMV_SHM_PATHS;
    if (!(sp->seq & 1)) __atomic_store_n(&sp->seq, sp->seq + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    sp->len = on ? (uint32_t)len : 0;
    if (on) {
        memcpy(sp->paths, v->paths, (size_t)v->paths_len);
        char *w = sp->paths + v->paths_len;
        for (int i = 0; i < v->npasses; i++) {
            const struct pass *ps = &v->passes[i];
            *w++ = ps->lfd < 0 ? 'G' : 'O';
            memcpy(w, ps->guest, ps->glen + 1);
            w += ps->glen + 1;
            *w++ = ps->lfd < 0 ? 'H' : 'U';
            memcpy(w, ps->host, ps->hlen + 1);
            w += ps->hlen + 1;
            if (ps->lfd >= 0) {
                *w++ = 'L';
                memcpy(w, ps->lower, ps->llen + 1);
                w += ps->llen + 1;
            }
        }
        memcpy(sp->calls, calls, sizeof sp->calls);
    } else {
        memset(sp->calls, 0, sizeof sp->calls);
    }
    if (paths_pending[viewno]) paths_pending[viewno]--;
    if (!paths_pending[viewno]) __atomic_store_n(&sp->seq, sp->seq + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&plock);
}

int umv_shm_fd(void) {
    static int fd = -1;
    pthread_mutex_lock(&slock);
    if (fd < 0) {
        int f = memfd_create("umview-stat", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        void *m = MAP_FAILED;
        if (f >= 0 && ftruncate(f, sizeof *shm) == 0)
            m = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
        /* Sealed: its size fixed (a program that opens it cannot make our
         * writes fault), and no writes but through our mapping. */
        if (m != MAP_FAILED &&
            fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0) {
            munmap(m, sizeof *shm);
            m = MAP_FAILED;
        }
        if (m == MAP_FAILED) {
            int e = errno;
            if (f >= 0) close(f);
            pthread_mutex_unlock(&slock);
            return -e;
        }
        shm = m;
        shm->magic = UMV_SHM_MAGIC;
        fd = f;
    }
    pthread_mutex_unlock(&slock);
    return fd;
}

/* The shim must open the memfd by a path, and /proc/OURPID/fd is closed to
 * the view's processes (we are not dumpable, see umv_init).  So a holder
 * keeps it open: `sleep infinity` with the memfd as its fd 3, killed when
 * we end (PDEATHSIG; and by umv_shm_stop).  The seals make that copy
 * harmless.  Returns the holder's pid, spawning it when it is gone. */
static pid_t shm_holder_pid = -1;
static int shm_holder_pidfd = -1;   /* its pid may be reused once the tracer reaps it */

int umv_shm_holder(void) {
    int fd = umv_shm_fd();
    if (fd < 0) return fd;
    pthread_mutex_lock(&slock);
    if (shm_holder_pidfd >= 0) {
        struct pollfd pf = {shm_holder_pidfd, POLLIN, 0};
        if (poll(&pf, 1, 0) == 0) {   /* readable once it has ended */
            pthread_mutex_unlock(&slock);
            return shm_holder_pid;
        }
        close(shm_holder_pidfd);
        shm_holder_pidfd = -1;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t parent = getpid(), pid = -1;
    if (ro >= 0 && null >= 0) pid = fork();
    if (pid == 0) {
        /* only async-signal-safe calls: we are a copy of a threaded process */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent) _exit(0);
        for (int i = 0; i < 3; i++) dup2(null, i);
        dup2(ro, 3);
        syscall(SYS_close_range, 4, ~0U, 0);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        char *argv[] = {"umview-shm", "infinity", NULL}, *envp[] = {NULL};
        execve("/bin/sleep", argv, envp);
        _exit(127);
    }
    int e = errno;
    if (ro >= 0) close(ro);
    if (null >= 0) close(null);
    shm_holder_pid = pid;
    if (pid > 0) shm_holder_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    pthread_mutex_unlock(&slock);
    return pid > 0 ? pid : -e;
}

void umv_shm_stop(void) {
    pthread_mutex_lock(&slock);
    if (shm_holder_pidfd >= 0) {
        siginfo_t si;
        if (syscall(SYS_pidfd_send_signal, shm_holder_pidfd, SIGKILL, NULL, 0) == 0)
            waitid(P_PIDFD, shm_holder_pidfd, &si, WEXITED);   /* the tracer that reaps is gone */
        close(shm_holder_pidfd);
    }
    shm_holder_pidfd = shm_holder_pid = -1;
    pthread_mutex_unlock(&slock);
}

int umv_stat_table_new(void) {
    /* the shim's Bloom filter must see every key: shared memory first */
    int shm_rc = umv_shm_fd();
    if (shm_rc < 0) return shm_rc;
    pthread_mutex_lock(&slock);
    int table = -ENOSPC;
    for (int i = 0; i < STAT_TABLES; i++)
        if (!stables[i].used) {
            stables[i].used = 1;
            if (sgrow(i) < 0) { stables[i].used = 0; table = -ENOMEM; break; }
            table = i;
            break;
        }
    pthread_mutex_unlock(&slock);
    return table;
}

void umv_stat_table_free(int table) {
    if (table < 0 || table >= STAT_TABLES) return;
    pthread_mutex_lock(&slock);
    for (int v = 0; v < UMV_MAX_VIEWS; v++)
        if (views[v].stat_table == table + 1) { views[v].stat_table = 0; shm_publish(v); }
    free(stables[table].k);
    memset(&stables[table], 0, sizeof stables[table]);
    pthread_mutex_unlock(&slock);
}

int umv_stat_table_set(int table, uint64_t dev, uint64_t ino, int on) {
    if (table < 0 || table >= STAT_TABLES) return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&slock);
    if (!stables[table].used) { rc = -EINVAL; goto out; }
    if (on && (stables[table].n + stables[table].dead + 1) * 2 > stables[table].cap &&
        (rc = sgrow(table)) < 0)
        goto out;
    skey *e = sfind(table, dev, ino);
    if (on && e->state != 1) {
        if (e->state == 2) stables[table].dead--;
        *e = (skey){dev, ino, 1};
        stables[table].n++;
        if (shm) {
            uint32_t pos[2];
            umv_shm_bloom_pos(dev, ino, pos);
            for (int i = 0; i < 2; i++)
                __atomic_fetch_or(&shm->bloom[pos[i] / 64], 1ULL << (pos[i] % 64), __ATOMIC_RELEASE);
        }
    } else if (!on && e->state == 1) {
        e->state = 2;
        stables[table].n--;
        stables[table].dead++;
    }
out:
    pthread_mutex_unlock(&slock);
    return rc;
}

int umv_stat_table_has(int table, uint64_t dev, uint64_t ino) {
    if (table < 0 || table >= STAT_TABLES) return -EINVAL;
    pthread_mutex_lock(&slock);
    int has = stables[table].used && sfind(table, dev, ino)->state == 1;
    pthread_mutex_unlock(&slock);
    return has;
}

int umv_view_set_statown(int viewno, int table, const uint32_t *cfg) {
    if (viewno < 0 || viewno >= UMV_MAX_VIEWS || table >= STAT_TABLES) return -EINVAL;
    pthread_mutex_lock(&slock);
    views[viewno].stat_table = table < 0 || !stables[table].used ? 0 : table + 1;
    if (cfg) memcpy(views[viewno].stat_cfg, cfg, sizeof views[viewno].stat_cfg);
    shm_publish(viewno);
    pthread_mutex_unlock(&slock);
    return 0;
}

/* Published at once (not through the tracer's queue): a module turns it
 * off from the handler of the call that makes the ids differ, before that
 * caller resumes. */
int umv_view_set_ids(int viewno, int on, uint32_t uid, uint32_t gid) {
    if (viewno < 0 || viewno >= UMV_MAX_VIEWS) return -EINVAL;
    pthread_mutex_lock(&slock);
    views[viewno].ids_on = on != 0;
    views[viewno].ids[0] = uid;
    views[viewno].ids[1] = gid;
    shm_publish(viewno);
    pthread_mutex_unlock(&slock);
    return 0;
}

int umv_view_set_net(int viewno, int nports, const uint32_t *pairs, const uint32_t *socks) {
    if (viewno < 0 || viewno >= UMV_MAX_VIEWS || nports < 0 || nports > UMV_SHM_PORTS) return -EINVAL;
    view *v = &views[viewno];
    pthread_mutex_lock(&slock);
    v->nports = (uint32_t)nports;
    memset(v->ports, 0, sizeof v->ports);
    if (nports) memcpy(v->ports, pairs, nports * sizeof *pairs);
    memset(v->socks, 0, sizeof v->socks);
    if (socks) memcpy(v->socks, socks, sizeof v->socks);
    shm_publish(viewno);
    pthread_mutex_unlock(&slock);
    return 0;
}

/* the kernel's encoding of a device number in struct stat (new_encode_dev) */
static uint64_t stat_encode_dev(uint32_t maj, uint32_t min) {
    return (min & 0xff) | ((uint64_t)maj << 8) | ((uint64_t)(min & ~0xffu) << 12);
}

/* 1: answered here (the caller skips the call with 0); 0: let the kernel
 * answer (what the module would also do: the call fails, or the file is on
 * the kernel_dev); -1: ask Python.  Only r's nr and arguments are read. */
static int stat_fast(tracee *t, const struct user_regs_struct *r) {
    long nr = (long)r->orig_rax;
    int dirfd = AT_FDCWD, flags = 0, is_statx = 0;
    uint64_t addr, buf;
    unsigned mask = STATX_BASIC_STATS;
    switch (nr) {
    case SYS_stat: addr = r->rdi; buf = r->rsi; break;
    case SYS_lstat: addr = r->rdi; buf = r->rsi; flags = AT_SYMLINK_NOFOLLOW; break;
    case SYS_fstat: dirfd = (int)r->rdi; addr = 0; buf = r->rsi; flags = AT_EMPTY_PATH; break;
    case SYS_newfstatat: dirfd = (int)r->rdi; addr = r->rsi; buf = r->rdx; flags = (int)r->r10; break;
    case SYS_statx:
        dirfd = (int)r->rdi; addr = r->rsi; flags = (int)r->rdx; mask = (unsigned)r->r10;
        buf = r->r8; is_statx = 1; break;
    default: return -1;
    }
    char path[PATH_MAX + 1];
    long n = 0;
    if (addr) {
        n = umv_peek_string(t->tid, addr, path, sizeof path);
        if (n < 0 || n >= PATH_MAX) return 0;   /* EFAULT, ENAMETOOLONG: the kernel says so */
    }
    path[n] = 0;
    char host[PATH_MAX + 64];
    int fd = -1;
    if (n == 0) {
        if (!(flags & AT_EMPTY_PATH)) return 0;            /* ENOENT */
        if (dirfd == AT_FDCWD) {
            snprintf(host, sizeof host, "/proc/%d/cwd", t->tid);
            flags &= ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        } else if (dirfd >= 0) {
            /* the tracee's open file itself (an O_PATH fd of a symlink
             * included), as the module takes it: pidfd_getfd */
            int pfd = proc_pidfd(t->p);
            if (pfd < 0) return -1;
            fd = (int)syscall(SYS_pidfd_getfd, pfd, dirfd, 0);
            if (fd < 0) return errno == EBADF ? 0 : -1;
            host[0] = 0;
        } else {
            return 0;                                       /* EBADF */
        }
    } else if (path[0] == '/') {
        /* /proc/self and /dev/fd mean the tracee there: the module knows */
        if (!strncmp(path, "/proc/", 6) || !strncmp(path, "/dev/", 5)) return -1;
        snprintf(host, sizeof host, "/proc/%d/root%s", t->p->tgid, path);
    } else if (dirfd == AT_FDCWD) {
        snprintf(host, sizeof host, "/proc/%d/cwd/%s", t->tid, path);
    } else if (dirfd >= 0) {
        snprintf(host, sizeof host, "/proc/%d/fd/%d/%s", t->p->tgid, dirfd, path);
    } else {
        return 0;
    }
    struct statx sx;
    int rc = fd >= 0 ? statx(fd, "", flags | AT_EMPTY_PATH, mask, &sx)
                     : statx(AT_FDCWD, host, flags, mask, &sx);
    if (fd >= 0) close(fd);
    if (rc < 0) return 0;
    uint32_t cfg[7];
    int listed;
    pthread_mutex_lock(&slock);
    int table = views[t->p->view].stat_table - 1;
    memcpy(cfg, views[t->p->view].stat_cfg, sizeof cfg);
    listed = table < 0 || sfind(table, makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_ino)->state == 1;
    pthread_mutex_unlock(&slock);
    if (listed) return -1;
    if (sx.stx_dev_major == cfg[5] && sx.stx_dev_minor == cfg[6]) return 0;
    uint32_t uid = cfg[0], gid = cfg[1];
    if (cfg[4]) {   /* keep_others: only the real user's files become the fake owner's */
        if (sx.stx_uid != cfg[2]) uid = sx.stx_uid;
        if (sx.stx_gid != cfg[3]) gid = sx.stx_gid;
    }
    int64_t wrote;
    if (is_statx) {
        sx.stx_uid = uid;
        sx.stx_gid = gid;
        wrote = umv_poke(t->tid, buf, &sx, sizeof sx) == (int64_t)sizeof sx;
    } else {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_dev = stat_encode_dev(sx.stx_dev_major, sx.stx_dev_minor);
        st.st_ino = sx.stx_ino;
        st.st_nlink = sx.stx_nlink;
        st.st_mode = sx.stx_mode;
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_rdev = stat_encode_dev(sx.stx_rdev_major, sx.stx_rdev_minor);
        st.st_size = (off_t)sx.stx_size;
        st.st_blksize = sx.stx_blksize;
        st.st_blocks = (blkcnt_t)sx.stx_blocks;
        st.st_atim.tv_sec = sx.stx_atime.tv_sec; st.st_atim.tv_nsec = sx.stx_atime.tv_nsec;
        st.st_mtim.tv_sec = sx.stx_mtime.tv_sec; st.st_mtim.tv_nsec = sx.stx_mtime.tv_nsec;
        st.st_ctim.tv_sec = sx.stx_ctime.tv_sec; st.st_ctim.tv_nsec = sx.stx_ctime.tv_nsec;
        wrote = umv_poke(t->tid, buf, &st, sizeof st) == (int64_t)sizeof st;
    }
    if (!wrote) return 0;   /* a bad buffer: the kernel's EFAULT */
    return 1;               /* answered: the call returns 0 */
}

/* The client side of the virtual syscall (in-view commands): -errno, or the
 * answer's length.  Here rather than through ctypes, which costs ~4 ms of
 * every in-view command's start. */
/* ------------------------------------------------------------------ */
/* seccomp user notification                                           */
/*
 * A ptrace stop costs ~18 µs here (two wake-ups across CPUs, the ptrace
 * requests, the tracer's waitid), and a path or stat call that the C core
 * answers at once still pays all of it.  So the filter installed at spawn
 * returns SECCOMP_RET_USER_NOTIF, not RET_TRACE, for the calls the C fast
 * paths usually answer (the path calls of a view whose modules narrow
 * them, the stat family under Claims.stat_owner), and a thread of ours
 * serves them from the listener fd: CONTINUE (the kernel runs the call as
 * it is), or an answer (a stat written into the caller, a call run here on
 * a pass's host path).  Nothing else differs: the answers are those of
 * the ptrace road (path_fast, stat_fast, umv_serve_here).
 *
 * What the notifier cannot serve (a call for Python, a rewritten path)
 * must reach the ptrace road, but RET_USER_NOTIF outranks RET_TRACE, and
 * a call the notifier answers CONTINUE runs with no further filtering.  So
 * the notifier *bounces* it (notif_bounce): it leaves the notification
 * unanswered and has the tracer PTRACE_INTERRUPT the thread.  The thread
 * sleeps interruptibly for our answer; the interrupt wakes it, the kernel
 * withdraws the notification and ends the call with -ERESTARTSYS, and the
 * thread stops (PTRACE_EVENT_STOP) on its way back to user space, before
 * the restart.  There the tracer changes orig_rax to UMV_NR_BOUNCE, a
 * number no kernel has, that every filter of ours traps with RET_TRACE
 * (UMV_DATA_BOUNCE); the restart makes that call, and at its seccomp stop
 * the tracer puts the real number back and serves the call as if it had
 * trapped there: the kernel does not run the filters again after a
 * tracer's seccomp stop (Linux >= 4.8), so the real call is not notified
 * a second time.
 *
 * One listener per spawned process tree (a task can have only one, and
 * filters cannot be removed, so the set notified is fixed at spawn; a
 * module loaded later that wants one of those calls gets it through a
 * bounce).  The notifier reads the tracer's tables under tlock, which the
 * tracer holds for writing while it handles stops and commands.
 */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP_ 1
#define MAX_LISTENERS 64

static pthread_rwlock_t tlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t nlock = PTHREAD_MUTEX_INITIALIZER;
/* Threads serving one listener: one per CPU we may run on, at most
 * NL_THREADS (see notif_sync_update for why).  Thread 0 always serves;
 * the others (helpers) only while the view has many threads (nl_spread),
 * parked on nl_cond otherwise.  Under nlock. */
#define NL_THREADS 4
struct nl_entry {
    int fd, threads;               /* threads still running */
    int dead;                      /* thread 0 has ended: helpers end too */
    int alive[NL_THREADS];
    pthread_t th[NL_THREADS];
};
static struct nl_entry nls[MAX_LISTENERS];
static int nl_count;
static pthread_cond_t nl_cond = PTHREAD_COND_INITIALIZER;
static int nl_spread;
static int nl_nthreads, nl_pin;    /* threads per listener; each on its own CPU? */
static int nl_cpus[NL_THREADS];
static cpu_set_t nl_mask;          /* the CPUs we may run on */
static int nl_wake[2] = {-1, -1};
static pthread_t notifier;
static int nl_sock[MAX_LISTENERS], nl_nsock;  /* sockets a listener comes through */
static int notifier_started, notifier_stop;
static int recv_fd(int sock);

static void notif_bounce(tracee *t, long nr) {
    __atomic_store_n(&t->bounce_nr, nr + 1, __ATOMIC_RELEASE);
    cmd *c = calloc(1, sizeof *c);
    c->kind = CMD_BOUNCE;
    c->tid = t->tid;
    push_cmd(c);
    stats.notif_bounced++;
}

/* An open for reading only that path_fast moves to a pass's host path
 * (FAST_MOVE: a bind or tmpfs mount, or an overlay's layer), served
 * here: opened by us and put in the caller's fd table by the kernel
 * (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND, Linux 5.14,
 * which also answers the call with the new number).  The listener cannot
 * rewrite the caller's path, so such an open went on to the ptrace road:
 * ld.so loading a library from a mount, and libc's own opens (fopen,
 * opendir, fts) that the shim cannot see, at ~220 µs each here.  Only a
 * regular file or a directory, found by an O_PATH open (no side effect:
 * a FIFO or a device is never opened here) and then reopened through its
 * /proc/self/fd link with the caller's flags, so the file checked is the
 * file opened.  We run with the caller's ids (a view changes none), so
 * the kernel's permission checks are the caller's.  1: answered (or the
 * caller is gone); 0: not served, the usual road. */
static int notif_open(int lfd, const struct seccomp_notif *req, long nr, const char *host) {
    int flags = (int)req->data.args[nr == SYS_open ? 1 : 2];
    /* not O_PATH: the kernel hands no O_PATH file on (fget) */
    if ((flags & (O_CREAT | O_TRUNC | O_PATH)) || (flags & __O_TMPFILE) == __O_TMPFILE) return 0;
    if ((flags & O_ACCMODE) != O_RDONLY) return 0;
    int p = open(host, O_PATH | O_CLOEXEC | (flags & (O_NOFOLLOW | O_DIRECTORY)));
    if (p < 0) return 0;
    struct stat st;
    int f = -1;
    if (fstat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", p);
        /* O_NOFOLLOW was applied above; the link itself must be followed */
        f = open(link, (flags & ~(O_NOFOLLOW | O_EXCL)) | O_CLOEXEC);
    }
    close(p);
    if (f < 0) return 0;
    struct seccomp_notif_addfd add;
    memset(&add, 0, sizeof add);
    add.id = req->id;
    add.flags = SECCOMP_ADDFD_FLAG_SEND;
    add.srcfd = (uint32_t)f;
    add.newfd_flags = (uint32_t)(flags & O_CLOEXEC);
    int r = ioctl(lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    int e = errno;
    close(f);
    /* ENOENT: the caller is gone (killed while we worked); else (EMFILE:
     * its fd table is full) the usual road gives the kernel's answer */
    return r >= 0 || e == ENOENT;
}

/* Serve one notification: 0 = answered in resp, 1 = bounced or answered
 * by notif_open (no answer to send). */
static int notif_serve(int fd, const struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
    tracee *t = NULL;
    /* A thread makes calls only after the tracer has seen it (a new one
     * starts stopped), so it is in the table; a few tries cover an exec
     * that the tracer is still taking in. */
    for (int tries = 0; tries < 1000; tries++) {
        pthread_rwlock_rdlock(&tlock);
        t = tfind((pid_t)req->pid);
        if (t && t->p) break;
        pthread_rwlock_unlock(&tlock);
        t = NULL;
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) return 1;  /* gone */
        usleep(100);
    }
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    if (!t) { stats.notif_unknown++; return 0; }
    long mark = __atomic_exchange_n(&t->notif_pass, 0, __ATOMIC_ACQ_REL);
    if (mark == (long)req->data.nr + 1) {
        /* the recheck of a call the tracer let run (let_run) */
        pthread_rwlock_unlock(&tlock);
        return 0;
    }
    const view *v = &views[t->p->view];
    long nr = req->data.nr;
    int how = -1;  /* -1 bounce, 0 answered */
    struct user_regs_struct r;
    memset(&r, 0, sizeof r);
    r.orig_rax = (unsigned long long)nr;
    r.rdi = req->data.args[0]; r.rsi = req->data.args[1]; r.rdx = req->data.args[2];
    r.r10 = req->data.args[3]; r.r8 = req->data.args[4]; r.r9 = req->data.args[5];
    notif_cur_fd = fd;
    notif_cur_id = req->id;
    note_call(nr);  /* before it runs: see dir_of */
    note_seen(t->p);
    if (nr < 0 || nr >= UMV_BITMAP_BYTES * 8 || req->data.arch != AUDIT_ARCH_X86_64) {
        how = -1;
    } else if (needs_filter(t->p)) {
        how = -1;  /* the tracer widens its filter at the bounce's stop */
    } else if (!bit(v->claims, nr)) {
        how = 0;   /* no module wants it (any more): CONTINUE */
    } else {
        if (v->paths) {
            int moved[2];
            int fast = path_fast(t, &r, moved);
            if (fast == FAST_RUN) {
                how = 0;
                stats.notif_paths++;
            } else if (fast == FAST_READ) {
                int64_t res = serve_read(t, nr, (const uint64_t *)req->data.args);
                resp->flags = 0;
                if (res < 0) resp->error = (int32_t)res; else resp->val = res;
                how = 0;
                stats.notif_served++;
            } else if (fast == FAST_MOVE && (nr == SYS_openat || nr == SYS_open) && moved[1] < 0 &&
                       moved[0] == prules[nr].p0 && notif_open(fd, req, nr, pass_hosts[0])) {
                how = 1;   /* answered */
                stats.notif_served++;
            }
        }
        if (how < 0 && v->stat_table) {
            int served = stat_fast(t, &r);
            if (served == 1) { resp->flags = 0; resp->val = 0; how = 0; stats.notif_stats++; }
            else if (served == 0) how = 0;  /* the kernel answers (an error) */
        }
    }
    notif_cur_fd = -1;
    if (how < 0) notif_bounce(t, nr);
    pthread_rwlock_unlock(&tlock);
    return how != 0;
}

static void notif_add(int fd, int is_sock);

/* Threads per listener, each waiting in SECCOMP_IOCTL_NOTIF_RECV itself:
 * a poll() before each RECV costs a syscall a call (about 1 µs of the 6 µs
 * round trip measured here).  When the last task using the filter is gone
 * the kernel wakes the waiting RECV with ENOENT, the same error as for a
 * caller killed before we read its call; poll() then tells the two apart
 * (POLLHUP), and thread 0 marks the listener dead and ends; the last of its
 * threads closes it.  Threads take turns (nserve): the tracer's tables they
 * read under tlock, and the caches path_fast keeps, are not for two at once. */
static pthread_mutex_t nserve = PTHREAD_MUTEX_INITIALIZER;
static int notif_epoch;          /* bumped by notif_shutdown */

static struct nl_entry *nl_find(int fd) {
    for (int j = 0; j < nl_count; j++)
        if (nls[j].fd == fd) return &nls[j];
    return NULL;
}

/* A helper waits here while the view has few threads; 0: its listener
 * or the core is gone, the helper ends. */
static int helper_wait(int fd, int epoch) {
    pthread_mutex_lock(&nlock);
    struct nl_entry *e;
    while ((e = nl_find(fd)) && !e->dead && !nl_spread &&
           __atomic_load_n(&notif_epoch, __ATOMIC_ACQUIRE) == epoch)
        pthread_cond_wait(&nl_cond, &nlock);
    int go = e && !e->dead && __atomic_load_n(&notif_epoch, __ATOMIC_ACQUIRE) == epoch;
    pthread_mutex_unlock(&nlock);
    return go;
}

static void *listener_main(void *arg) {
    int fd = (int)((intptr_t)arg / NL_THREADS), k = (int)((intptr_t)arg % NL_THREADS);
    int epoch = __atomic_load_n(&notif_epoch, __ATOMIC_ACQUIRE);
    for (;;) {
        if (k && !helper_wait(fd, epoch)) break;
        struct seccomp_notif req;
        memset(&req, 0, sizeof req);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
            if (errno == EINTR) continue;
            struct pollfd pf = {fd, 0, 0};
            if (poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLERR | POLLNVAL))) break;
            if (errno == ENOENT) continue;
            if (__atomic_load_n(&notif_epoch, __ATOMIC_ACQUIRE) != epoch) break;
            continue;
        }
        struct seccomp_notif_resp resp;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        pthread_mutex_lock(&nserve);
        int send = 1, over = __atomic_load_n(&notif_epoch, __ATOMIC_ACQUIRE) != epoch;
        if (over) {
            /* the core that traced these was shut down: let them go */
            resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        } else {
            stats.notif_calls++;
            send = notif_serve(fd, &req, &resp) == 0;
        }
        pthread_mutex_unlock(&nserve);
        if (send && ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0) {}  /* ENOENT: gone */
        if (over) break;
    }
    pthread_mutex_lock(&nlock);
    struct nl_entry *e = nl_find(fd);
    int last = 1;
    if (e) {
        e->alive[k] = 0;
        if (!k) {
            e->dead = 1;
            pthread_cond_broadcast(&nl_cond);
        }
        last = --e->threads == 0;
        if (last) *e = nls[--nl_count];
    }
    pthread_mutex_unlock(&nlock);
    if (last) close(fd);
    return NULL;
}

/* The notifier thread proper only takes in listener fds, which come from
 * a new tree's first process over a socketpair (see umv_spawn). */
static void *notifier_main(void *arg) {
    (void)arg;
    struct pollfd pf[MAX_LISTENERS + 1];
    int socks[MAX_LISTENERS];
    while (!__atomic_load_n(&notifier_stop, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&nlock);
        int ns = nl_nsock;
        memcpy(socks, nl_sock, ns * sizeof *socks);
        pthread_mutex_unlock(&nlock);
        pf[0].fd = nl_wake[0];
        pf[0].events = POLLIN;
        for (int i = 0; i < ns; i++) { pf[1 + i].fd = socks[i]; pf[1 + i].events = POLLIN; }
        if (poll(pf, ns + 1, -1) < 0) continue;
        if (pf[0].revents) {
            char b[64];
            if (read(nl_wake[0], b, sizeof b) < 0) {}
        }
        for (int i = 0; i < ns; i++) {
            if (!pf[1 + i].revents) continue;
            int lfd = recv_fd(socks[i]);
            pthread_mutex_lock(&nlock);
            for (int j = 0; j < nl_nsock; j++)
                if (nl_sock[j] == socks[i]) { nl_sock[j] = nl_sock[--nl_nsock]; break; }
            pthread_mutex_unlock(&nlock);
            close(socks[i]);
            if (lfd >= 0) notif_add(lfd, 0);
        }
    }
    return NULL;
}

/* Where the notifier runs decides what a call costs: waking a thread on
 * the other CPU costs ~20 µs on the VM of 2026-12-07, twice per call (the
 * notification and the answer), against ~9 µs for the whole round trip on
 * one CPU.
 *   - One program at a time: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux >=
 *     6.6) has the caller and the notifier wake each other on the
 *     caller's CPU: a stat loop takes 9 µs a call, 35-49 µs without it.
 *   - Many (make -j2): sync would pull every caller to the one serving
 *     thread's CPU (make -j2 in a bind view 0.89 → 1.06 s, its compilers
 *     sharing one CPU).  Instead each CPU gets a serving thread of its
 *     own, pinned there: the kernel wakes every thread waiting in RECV
 *     (its wait is not exclusive), and the one on the caller's CPU, which
 *     the caller has just left free, takes the call first; its answer
 *     wakes the caller where it was.  make -j2 in a bind view with 6,273
 *     notified calls: 0.89 → 0.81 s (native 0.62 s); two unpinned
 *     threads 0.85 s.
 * Each extra thread is one more woken for nothing per call, so there are
 * at most NL_THREADS, pinned only when that covers every CPU.  The
 * tracer switches between the two ways as threads come and go; the
 * helpers park meanwhile, so one program pays for no second waiter. */
static int sync_on = 1;

/* under nlock: should the helpers serve (many threads, and helpers)? */
static void nl_spread_update(void) {
    nl_spread = !sync_on && nl_nthreads > 1;
}

static void nl_place(struct nl_entry *e) {
    for (int k = 0; k < NL_THREADS; k++) {
        if (!e->alive[k]) continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        if (nl_spread && nl_pin) CPU_SET(nl_cpus[k], &one);
        if (pthread_setaffinity_np(e->th[k], sizeof one, nl_spread && nl_pin ? &one : &nl_mask)) {}
    }
}

static void notif_sync_update(void) {
    int want = ntracees <= 2;
    if (want == sync_on) return;
    sync_on = want;
    pthread_mutex_lock(&nlock);
    nl_spread_update();
    for (int i = 0; i < nl_count; i++) {
        if (ioctl(nls[i].fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (__u64)(want ? SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP_ : 0)) < 0) {}
        nl_place(&nls[i]);
    }
    pthread_cond_broadcast(&nl_cond);
    pthread_mutex_unlock(&nlock);
}

/* How many threads serve a listener, and on which CPUs (under nlock). */
static void nl_threads_init(void) {
    if (nl_nthreads) return;
    nl_nthreads = 1;
    if (sched_getaffinity(0, sizeof nl_mask, &nl_mask)) return;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &nl_mask)) continue;
        if (n < NL_THREADS) nl_cpus[n] = c;
        n++;
    }
    nl_nthreads = n < 1 ? 1 : n > NL_THREADS ? NL_THREADS : n;
    nl_pin = n <= NL_THREADS;
}

/* A listener (or, is_sock, the socket it will come through) for the
 * notifier, which is started at the first. */
static void notif_add(int fd, int is_sock) {
    __u64 flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP_;
    /* Linux >= 6.6: the caller and we wake each other on one CPU */
    if (!is_sock && sync_on && ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) < 0) {}
    sigset_t all, old;
    sigfillset(&all);
    pthread_mutex_lock(&nlock);
    pthread_sigmask(SIG_BLOCK, &all, &old);  /* our threads take no signals */
    if (is_sock && nl_nsock < MAX_LISTENERS) { nl_sock[nl_nsock++] = fd; fd = -1; }
    if (!is_sock && nl_count < MAX_LISTENERS) {
        nl_threads_init();
        nl_spread_update();
        struct nl_entry *e = &nls[nl_count];
        memset(e, 0, sizeof *e);
        e->fd = fd;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        for (int k = 0; k < nl_nthreads; k++) {
            if (pthread_create(&e->th[k], &attr, listener_main, (void *)(intptr_t)(fd * NL_THREADS + k)))
                break;
            e->alive[k] = 1;
            e->threads++;
        }
        pthread_attr_destroy(&attr);
        if (e->threads) {   /* thread 0 at least (helpers start after it) */
            nl_count++;
            nl_place(e);
            fd = -1;
        }
    }
    if (!notifier_started && nl_wake[0] < 0 && pipe2(nl_wake, O_CLOEXEC | O_NONBLOCK) == 0)
        notifier_started = pthread_create(&notifier, NULL, notifier_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_unlock(&nlock);
    /* Too many trees at once: a listener nobody reads would hang its
     * calls, but closing it makes them fail (ENOSYS), so the first check
     * is in umv_spawn (no nfilter past MAX_LISTENERS). */
    if (fd >= 0) close(fd);
    if (nl_wake[1] >= 0 && write(nl_wake[1], "a", 1) < 0) {}
}

static void notif_shutdown(void) {
    if (!notifier_started) return;
    __atomic_store_n(&notifier_stop, 1, __ATOMIC_RELEASE);
    if (write(nl_wake[1], "q", 1) < 0) {}
    pthread_join(notifier, NULL);
    notifier_started = 0;
    notifier_stop = 0;
    /* listener threads end when their trees do; one still waiting lets
     * its callers go (CONTINUE) and ends at its next call */
    __atomic_add_fetch(&notif_epoch, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_lock(&nlock);
    pthread_cond_broadcast(&nl_cond);   /* parked helpers end */
    for (int i = 0; i < nl_nsock; i++) close(nl_sock[i]);
    nl_nsock = 0;
    pthread_mutex_unlock(&nlock);
    close(nl_wake[0]);
    close(nl_wake[1]);
    nl_wake[0] = nl_wake[1] = -1;
}

/* The listener fd travels from the child to us over a socketpair. */
static void send_fd(int sock, int fd) {
    char c = 'L';
    struct iovec iov = {&c, 1};
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof(int));
    if (sendmsg(sock, &m, 0) < 0) {}
}

static int recv_fd(int sock) {
    char c;
    struct iovec iov = {&c, 1};
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    ssize_t n;
    do n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
    if (n <= 0) return -1;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (!h || h->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(h), sizeof fd);
    return fd;
}

long umv_vsys(const char *req, long len, char *out, long outlen) {
    long r = syscall(UMV_NR_VSYS, req, len, out, outlen);
    return r < 0 ? -errno : r;
}

/* Calls every view traps whatever modules say: escapes and attacks on us. */
static void handle_guard(tracee *t, struct user_regs_struct *r) {
    long nr = (long)r->orig_rax;
    if (nr == __NR_clone && (r->rdi & CLONE_UNTRACED)) {
        /* A child we could not follow would run outside the view. */
        r->rdi &= ~(unsigned long long)CLONE_UNTRACED;
        ptrace(PTRACE_SETREGS, t->tid, 0, r);
        resume(t, PTRACE_CONT, 0);
        return;
    }
    pid_t target = -1;
    if (nr == __NR_ptrace) target = (pid_t)r->rsi;
    else if (nr == __NR_process_vm_readv || nr == __NR_process_vm_writev) target = (pid_t)r->rdi;
    else if (nr == __NR_pidfd_getfd) target = pidfd_target(t->tid, (int)r->rdi);
    if (same_process_as_us(target)) {
        skip_with(t, r, nr == __NR_pidfd_getfd ? -EPERM : -ESRCH);
        return;
    }
    resume(t, PTRACE_CONT, 0);
}

/* The full registers, when r holds only what PTRACE_GET_SYSCALL_INFO gave
 * (nr, arguments, ip, sp): needed to change them or to inject a call. */
static int full_regs(tracee *t, struct user_regs_struct *r, int *have) {
    if (*have) return 0;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, r) < 0) return -1;
    *have = 1;
    return 0;
}

/* Let the kernel run the call at a seccomp stop with arguments a.  The
 * kernel keeps every register but rax, rcx and r11 across a syscall, and
 * compiled code relies on that: the arguments we change (a path pointing
 * into the red zone, a dirfd) must be the program's again when the call
 * returns, so stop at its exit (PTRACE_SYSCALL) and put them back there.
 * If the call is restarted (signal), the restart runs with the program's
 * arguments and stops again at seccomp, so it is served afresh. */
static void run_rewritten(tracee *t, struct user_regs_struct *r, const uint64_t *a) {
    memcpy(t->orig_args, (uint64_t[6]){r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9}, sizeof t->orig_args);
    r->rdi = a[0]; r->rsi = a[1]; r->rdx = a[2];
    r->r10 = a[3]; r->r8 = a[4]; r->r9 = a[5];
    if (ptrace(PTRACE_SETREGS, t->tid, 0, r) < 0) return;
    let_run(t, (long)r->orig_rax);
    t->state = T_RESTORE;
    ptrace(PTRACE_SYSCALL, t->tid, 0, 0);
}

/* An execve or execveat a module that claims it need not see:
 *   - its file does not exist (ENOENT, ENOTDIR): the kernel fails it as it
 *     is (Claims.exec_found).  execvp and the shells try each directory of
 *     $PATH in turn: under `umview -0`, 574 of make -j2's 701 execs were
 *     such misses, each a round trip to Python;
 *   - (Claims.exec_setid) the file is not set-user-ID nor set-group-ID
 *     (with group execute) on the host, and the module's stat table has
 *     no record of it (its shown mode is the host's), while the module
 *     says every process has the same ids (ids_on; an exec would
 *     otherwise copy effective ids to saved ones): the exec changes no
 *     ids.  fakeroot's make -j2: the 127 remaining execs in Python.
 * A relative path is looked up through the caller's /proc/PID/cwd or fd
 * link.  A file made or changed between this look and the exec runs
 * unseen (a race the view accepts, as the C core's other checks). */
static int exec_unneeded(tracee *t, const struct user_regs_struct *r, const view *v) {
    long nr = (long)r->orig_rax;
    if (nr != SYS_execve && nr != SYS_execveat) return 0;
    if (!(v->flags & (UMV_VIEW_EXEC_FOUND | UMV_VIEW_EXEC_SETID))) return 0;
    static __thread char path[PATH_MAX], full[PATH_MAX + 64];
    uint64_t ptr = nr == SYS_execve ? r->rdi : r->rsi;
    int dirfd = nr == SYS_execve ? AT_FDCWD : (int)r->rdi;
    if (nr == SYS_execveat && (r->r8 & ~(uint64_t)AT_SYMLINK_NOFOLLOW)) return 0;  /* AT_EMPTY_PATH... */
    int64_t n = umv_peek_string(t->tid, ptr, path, sizeof path);
    if (n <= 0) return 0;   /* a bad pointer, "" (AT_EMPTY_PATH): the module's */
    if (path[0] == '/') snprintf(full, sizeof full, "%s", path);
    else if (dirfd == AT_FDCWD) snprintf(full, sizeof full, "/proc/%d/cwd/%s", t->tid, path);
    else if (dirfd >= 0) snprintf(full, sizeof full, "/proc/%d/fd/%d/%s", t->p->tgid, dirfd, path);
    else return 0;
    struct statx sx;
    int follow = nr == SYS_execveat && (r->r8 & AT_SYMLINK_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0;
    if (statx(AT_FDCWD, full, follow, STATX_TYPE | STATX_MODE | STATX_INO, &sx) < 0)
        return (errno == ENOENT || errno == ENOTDIR) && (v->flags & UMV_VIEW_EXEC_FOUND);
    if (!(v->flags & UMV_VIEW_EXEC_SETID) || !v->ids_on || !v->stat_table) return 0;
    if ((sx.stx_mode & S_ISUID) || (sx.stx_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) return 0;
    return umv_stat_table_has(v->stat_table - 1, makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_ino) == 0;
}

static void handle_seccomp(tracee *t) {
    unsigned long data = 0;
    struct user_regs_struct r;
    struct sysinfo_seccomp si;
    int have = 0;
    stats.seccomp_stops++;
    if (t->p) note_seen(t->p);
    /* One request for the seccomp data, the call and its arguments, instead
     * of GETEVENTMSG + GETREGS: most stops are resumed without changing a
     * register, and each ptrace request waits for the tracee to be off its
     * CPU (ptrace_check_attach).  The full registers are read when needed. */
    if (ptrace(PTRACE_GET_SYSCALL_INFO_, t->tid, sizeof si, &si) >= (long)offsetof(struct sysinfo_seccomp, pad2) &&
        si.op == PTRACE_SYSCALL_INFO_SECCOMP_) {
        data = si.ret_data;
        memset(&r, 0, sizeof r);
        r.orig_rax = si.nr;
        r.rdi = si.args[0]; r.rsi = si.args[1]; r.rdx = si.args[2];
        r.r10 = si.args[3]; r.r8 = si.args[4]; r.r9 = si.args[5];
        r.rip = si.ip;
        r.rsp = si.sp;
    } else {
        ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &data);
        if (full_regs(t, &r, &have) < 0) return;
    }
    if (t->state == T_INJECT) {  /* -S mode traps seccomp() itself */
        ptrace(PTRACE_SYSCALL, t->tid, 0, 0);
        return;
    }
    if (data == UMV_DATA_BOUNCE) {
        /* a notified call sent on to us: the real number back, then served
         * as if it had stopped here (the filters do not run again) */
        long nr = t->bounce_nr - 1;
        t->bounce_nr = 0;
        if (full_regs(t, &r, &have) < 0) return;
        if (nr < 0) { skip_with(t, &r, -ENOSYS); return; }  /* the program's own call */
        r.orig_rax = (unsigned long long)nr;
        if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0) return;
        data = UMV_DATA_CLAIM;
    }
    if (data != UMV_DATA_CLAIM && data != UMV_DATA_VSYS && data != UMV_DATA_GUARD) {
        /* RET_TRACE from the tracee's own filter: with no tracer of its own
         * the kernel would fail the call with ENOSYS, so do that. */
        if (full_regs(t, &r, &have) < 0) return;
        skip_with(t, &r, -ENOSYS);
        return;
    }
    if (needs_filter(t->p) && !t->p->inject_busy) {
        if (full_regs(t, &r, &have) < 0) return;
        if (inject_at_seccomp(t, &r) == 0) return;
        inject_failed(t);
    }
    if (data == UMV_DATA_GUARD) {
        if (full_regs(t, &r, &have) < 0) return;
        handle_guard(t, &r);
        return;
    }
    if (data == UMV_DATA_CLAIM) note_call((long)r.orig_rax);
    if (data == UMV_DATA_CLAIM && !bit(views[t->p->view].claims, (long)r.orig_rax)) {
        stats.fast_resumed++;
        let_run(t, (long)r.orig_rax);
        resume(t, PTRACE_CONT, 0);
        return;
    }
    if (data == UMV_DATA_CLAIM && exec_unneeded(t, &r, &views[t->p->view])) {
        stats.fast_resumed++;
        let_run(t, (long)r.orig_rax);
        resume(t, PTRACE_CONT, 0);
        return;
    }
    if (data == UMV_DATA_CLAIM && views[t->p->view].paths) {
        int moved[2];
        int how = path_fast(t, &r, moved);
        if (how == FAST_RUN) {
            stats.fast_resumed++;
            stats.fast_paths++;
            let_run(t, (long)r.orig_rax);
            resume(t, PTRACE_CONT, 0);
            return;
        }
        if (how == FAST_READ) {
            /* a call that only reads: run here on the host path, one stop */
            uint64_t a[6] = {r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9};
            int64_t res = serve_read(t, (long)r.orig_rax, a);
            if (full_regs(t, &r, &have) < 0) return;
            stats.fast_resumed++;
            stats.fast_served++;
            skip_with(t, &r, res);
            return;
        }
        if (how == FAST_MOVE) {
            /* the host paths go below the red zone, as Python's do */
            if (full_regs(t, &r, &have) < 0) return;
            uint64_t a[6] = {r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9};
            uint64_t at = r.rsp - 128;
            int ok = 1;
            for (int i = 0; i < 2 && ok; i++) {
                if (moved[i] < 0) continue;
                size_t len = strlen(pass_hosts[i]) + 1;
                at = (at - len) & ~(uint64_t)15;
                ok = umv_poke(t->tid, at, pass_hosts[i], len) == (int64_t)len;
                a[moved[i]] = at;
            }
            if (ok) {
                stats.fast_resumed++;
                stats.fast_moved++;
                run_rewritten(t, &r, a);
                return;
            }
        }
    }
    if (data == UMV_DATA_CLAIM && views[t->p->view].stat_table) {
        int served = stat_fast(t, &r);
        if (served >= 0) {
            stats.fast_resumed++;
            if (served) {
                stats.fast_stats++;
                if (full_regs(t, &r, &have) < 0) return;
                skip_with(t, &r, 0);
            } else {
                let_run(t, (long)r.orig_rax);
                resume(t, PTRACE_CONT, 0);
            }
            return;
        }
    }
    stats.to_python++;
    shim_forget();
    t->state = T_PYTHON;
    /* Straight into Python on this thread: a plain (non-async) handler
     * answers before we return, with no hand-off between threads; async
     * handlers and virtual syscalls answer later through umv_reply(). */
    umv_event e;
    fill_event(&e, UMV_EV_SYSCALL, t, &r, (int)data, 0);
    int64_t value = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Python may take its time: the notifier may read our tables meanwhile
     * (only this thread changes them, and it is here) */
    pthread_rwlock_unlock(&tlock);
    int act = umv_py_syscall(&e, &value);
    pthread_rwlock_wrlock(&tlock);
    shim_forget();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats.python_ns += (t1.tv_sec - t0.tv_sec) * 1000000000ULL + t1.tv_nsec - t0.tv_nsec;
    if (act == UMV_ACT_SKIP) {
        if (full_regs(t, &r, &have) < 0) return;
        skip_with(t, &r, value);
    } else if (act == UMV_ACT_CONT) {
        let_run(t, (long)r.orig_rax);
        resume(t, PTRACE_CONT, 0);
    } else if (act == UMV_ACT_REWRITE) {
        if (full_regs(t, &r, &have) < 0) return;
        r.orig_rax = (unsigned long long)e.nr;
        run_rewritten(t, &r, e.args);
    } else if (act != UMV_ACT_DEFER) {
        if (full_regs(t, &r, &have) < 0) return;
        skip_with(t, &r, -EIO);
    }
}

static void handle_syscall_stop(tracee *t) {
    if (t->state == T_INJECT) {
        /* struct ptrace_syscall_info: only its first byte, op, is needed */
        unsigned char info[128] = {0};
        if (ptrace(PTRACE_GET_SYSCALL_INFO_, t->tid, sizeof info, info) > 0 &&
            info[0] == PTRACE_SYSCALL_INFO_EXIT_)
            inject_finish(t);
        else
            ptrace(PTRACE_SYSCALL, t->tid, 0, 0);
        return;
    }
    if (t->state == T_RESTORE || t->state == T_WANT_EXIT) {
        /* The exit of an execve that succeeded belongs to the new image:
         * nothing of the old one may be put back into its registers (a
         * static binary takes rdx for a function to call at its exit).
         * A tracee with exec stops never gets here for it: resumed with
         * PTRACE_CONT at its PTRACE_EVENT_EXEC, it skips this stop, and
         * without them (see exec_wanted) it is served the same way. */
        struct user_regs_struct r = {0};
        int have = ptrace(PTRACE_GETREGS, t->tid, 0, &r) == 0;
        if (have && r.rax == 0 && (r.orig_rax == SYS_execve || r.orig_rax == SYS_execveat)) {
            if (t->state == T_RESTORE) shim_forget();
            t->restore_args = 0;
            t->state = T_RUNNING;
            resume(t, PTRACE_CONT, 0);
            return;
        }
        if (t->state == T_RESTORE) {
            shim_forget();   /* the rewritten call has run */
            if (have) {
                r.rdi = t->orig_args[0]; r.rsi = t->orig_args[1]; r.rdx = t->orig_args[2];
                r.r10 = t->orig_args[3]; r.r8 = t->orig_args[4]; r.r9 = t->orig_args[5];
                ptrace(PTRACE_SETREGS, t->tid, 0, &r);
            }
            t->state = T_RUNNING;
            resume(t, PTRACE_CONT, 0);
            return;
        }
        t->state = T_PYEXIT;    /* T_WANT_EXIT: Python waits for the result */
        emit(UMV_EV_SYSEXIT, t, &r, 0, (int64_t)r.rax);
        return;
    }
    resume(t, PTRACE_CONT, 0); /* not ours: should not happen */
}

/* flags: the clone flags the child was made with (fork: 0; vfork:
 * CLONE_VM | CLONE_VFORK). */
static void adopt_child(tracee *parent, pid_t child, unsigned long flags) {
    int thread = (flags & CLONE_THREAD) != 0;
    tracee *c = tfind(child);
    proc *p = thread ? parent->p : pfind(child);
    if (!p) {
        p = pnew(child, parent->p->view, parent->p->installed);
        /* What the shim keeps of fds (umvshm.h: seen_of) holds for one
         * process's table in one process's memory.  One fd table in two
         * memories, or one memory (and maybe one TLS) for two running
         * processes: the shim of neither trusts it.  A vfork child runs in
         * its parent's memory while the parent waits: until it execs or
         * ends (vfork_done). */
        if ((flags & CLONE_VM) && (flags & CLONE_VFORK)) {
            proc *owner = parent->p->mem_of ? pfind(parent->p->mem_of) : parent->p;
            if (owner) {
                p->mem_of = owner->tgid;
                owner->vforks++;
                note_shared(owner);
            }
        } else if (flags & (CLONE_FILES | CLONE_VM)) {
            p->fd_shared = parent->p->fd_shared = 1;
            note_shared(p);
            note_shared(parent->p);
        }
        memcpy(p->notify, parent->p->notify, sizeof p->notify);  /* filters are inherited */
        p->has_notify = parent->p->has_notify;
        umv_event e = {0};
        e.kind = UMV_EV_FORK;
        e.tid = child;
        e.pid = child;
        e.view = p->view;
        e.data = parent->p->tgid;
        push_event(&e);
    }
    if (thread) p->threaded = 1;
    if (!c) {
        tnew(child, p, T_NEW)->exec_opt = parent->exec_opt;
    } else if (c->state == T_ORPHAN) {
        c->exec_opt = parent->exec_opt;
        c->p = p;
        p->nthreads++;
        resume(c, PTRACE_CONT, 0);
    }
}

static void handle_exit(pid_t tid, int status) {
    tracee *t = tfind(tid);
    if (!t) return;
    int leader = t->p && t->p->tgid == tid;
    if (leader) {
        umv_event e = {0};
        e.kind = UMV_EV_EXIT;
        e.tid = tid;
        e.pid = tid;
        e.view = t->p->view;
        e.retval = status;
        push_event(&e);
    }
    tdel(t);
    if (ntracees == 0) {
        umv_event e = {0};
        e.kind = UMV_EV_ALLGONE;
        push_event(&e);
    }
}

static int is_stop_signal(int sig) {
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* A signal that comes while a call waits for the notifier's answer ends
 * the wait with -ERESTARTSYS, and a handler without SA_RESTART would then
 * see EINTR from a call (stat, open of a file) that never gives it
 * natively.  Make it restart whatever the handler (-ERESTARTNOINTR).  The
 * same -ERESTARTSYS can come from the call's own body, after a CONTINUE:
 * of the calls we notify, only an open can wait there (a FIFO, a device),
 * so an open of one of those keeps the kernel's answer. */
static void notif_interrupted(tracee *t) {
    struct user_regs_struct r;
    if (!t->p || !t->p->has_notify) return;  /* no listener filter */
    /* a recheck the tracer let run (let_run) that the signal interrupted
     * before the notifier saw it: the restart is a new call, served anew */
    __atomic_store_n(&t->notif_pass, 0, __ATOMIC_RELEASE);
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0) return;
    long nr = (long)r.orig_rax;
    if ((long long)r.rax != -ERESTARTSYS && (long long)r.rax != -ERESTARTNOHAND) return;
    if (nr == UMV_NR_BOUNCE) {
        /* a bounce on its way to its seccomp stop (the restart we set up
         * at its interrupt stop): it must happen */
    } else if (nr < 0 || nr >= UMV_BITMAP_BYTES * 8 || !bit(t->p->notify, nr)) {
        return;
    } else if (nr == SYS_open || nr == SYS_openat || nr == SYS_creat || nr == SYS_openat2) {
        uint64_t a[6] = {r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9};
        const path_rule *pr = &prules[nr];
        char path[PATH_MAX], where[PATH_MAX + 64];
        struct stat st;
        if (pr->p0 < 0 || umv_peek_string(t->tid, a[(int)pr->p0], path, sizeof path) <= 0) return;
        long dirfd = pr->d0 >= 0 ? (long)(int)a[(int)pr->d0] : AT_FDCWD;
        if (path[0] == '/') snprintf(where, sizeof where, "%s", path);
        else if (dirfd == AT_FDCWD) snprintf(where, sizeof where, "/proc/%d/cwd/%s", t->tid, path);
        else snprintf(where, sizeof where, "/proc/%d/fd/%d/%s", t->p->tgid, (int)dirfd, path);
        if (stat(where, &st) == 0 && !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) return;
    }
    r.rax = (unsigned long long)-ERESTARTNOINTR;
    ptrace(PTRACE_SETREGS, t->tid, 0, &r);
}

static void handle_stop(pid_t tid, int status) {
    int sig = WSTOPSIG(status), event = (unsigned)status >> 16;
    tracee *t = tfind(tid);
    stats.stops++;
    if (!t) {
        /* A new child's first stop, before its parent's fork/clone event
         * told us whose it is: hold it until then (it needs a view). */
        tnew(tid, NULL, T_ORPHAN);
        return;
    }
    if (t->state == T_NEW) {
        resume(t, PTRACE_CONT, 0);
        return;
    }
    switch (event) {
    case PTRACE_EVENT_SECCOMP:
        handle_seccomp(t);
        return;
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
    case PTRACE_EVENT_CLONE: {
        unsigned long msg = 0, flags = event == PTRACE_EVENT_VFORK ? CLONE_VM | CLONE_VFORK : 0;
        ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
        /* The parent is still inside the call: clone's flags are in rdi.
         * A clone with SIGCHLD and no CLONE_VFORK is reported as a fork,
         * so the call is looked at for every kind; where it cannot be, the
         * child is taken to share all (the shim then trusts less). */
        struct user_regs_struct r;
        int known = 0;
        if (ptrace(PTRACE_GETREGS, tid, 0, &r) == 0) {
            if (event == PTRACE_EVENT_CLONE || (long long)r.orig_rax == SYS_clone) {
                flags = r.rdi;
                known = (long long)r.orig_rax == SYS_clone;
            } else {
                known = (long long)r.orig_rax == SYS_fork || (long long)r.orig_rax == SYS_vfork;
            }
        }
        if (!known) flags |= CLONE_VM | CLONE_FILES;
        adopt_child(t, (pid_t)msg, flags);
        resume(t, PTRACE_CONT, 0);
        return;
    }
    case PTRACE_EVENT_EXEC: {
        /* A non-leader thread that calls execve takes over the leader's tid;
         * the kernel reports its former tid, whose entry is now stale. */
        unsigned long former = 0;
        ptrace(PTRACE_GETEVENTMSG, tid, 0, &former);
        if ((pid_t)former != tid) {
            tracee *o = tfind((pid_t)former);
            if (o) tdel(o);
        }
        /* a new image in its own memory, with an fd table of its own
         * (the kernel unshares it at exec) */
        vfork_done(t->p);
        t->p->fd_shared = 0;
        note_shared(t->p);
        if (views[t->p->view].flags & UMV_VIEW_NO_VDSO) hide_vdso(t);
        resume(t, PTRACE_CONT, 0);
        return;
    }
    case PTRACE_EVENT_STOP:
        if (is_stop_signal(sig)) {
            if (t->state == T_INJECT) inject_abort(t);
            /* Group-stop (SIGSTOP, Ctrl-Z, TTIN/TTOU).  PTRACE_LISTEN keeps
             * the tracee stopped as without us, so its parent's waitpid
             * sees the stop and SIGCONT resumes it; we then get a
             * PTRACE_EVENT_STOP with SIGTRAP. */
            t->state = T_LISTEN;
            ptrace(PTRACE_LISTEN, tid, 0, 0);
            if (tid == root_pid) {
                umv_event e = {0};
                e.kind = UMV_EV_GROUPSTOP;
                e.tid = tid;
                e.data = sig;
                push_event(&e);
            }
            return;
        }
        /* PTRACE_INTERRUPT, or the end of a listened group-stop */
        if (t->bounce_nr && sig == SIGTRAP) {
            /* A notified call we sent on (see "seccomp user notification"):
             * interrupted out of its wait for our answer, it returns
             * -ERESTARTSYS and is about to be restarted.  Restart it as
             * UMV_NR_BOUNCE instead, which stops at seccomp. */
            struct user_regs_struct r;
            long nr = t->bounce_nr - 1;
            if (ptrace(PTRACE_GETREGS, tid, 0, &r) == 0 && (long long)r.orig_rax == nr &&
                ((long long)r.rax == -ERESTARTSYS || (long long)r.rax == -ERESTARTNOINTR ||
                 (long long)r.rax == -ERESTARTNOHAND)) {
                r.orig_rax = UMV_NR_BOUNCE;
                ptrace(PTRACE_SETREGS, tid, 0, &r);
                resume(t, PTRACE_CONT, 0);
                return;
            }
            /* Not (or no longer) waiting: a signal ended the wait first and
             * the call, restarted, was notified and bounced again (this is
             * the first interrupt, the second comes), or it is already on
             * its way to UMV_NR_BOUNCE.  bounce_nr stays for that stop. */
        }
        if (needs_filter(t->p) && !t->p->inject_busy) {
            if (inject_generic(t, 0) == 0) return;
            inject_failed(t);
        }
        t->p->interrupted = 0;
        resume(t, PTRACE_CONT, 0);
        return;
    default:
        break;
    }
    if (sig == (SIGTRAP | 0x80)) {
        handle_syscall_stop(t);
        return;
    }
    /* signal-delivery-stop: deliver the signal unchanged */
    notif_interrupted(t);
    int retry = 0;
    if (t->state == T_INJECT) {
        inject_abort(t);
        retry = 1;
    }
    if (core_flags & UMV_REPORT_SIGNALS) emit(UMV_EV_SIGNAL, t, NULL, sig, 0);
    t->state = T_RUNNING;
    ptrace(PTRACE_CONT, tid, 0, (void *)(long)sig);
    if (retry && needs_filter(t->p)) maybe_interrupt(t->p);
}

/* The status of tid, which waitid() said has one. */
static void reap_one(pid_t tid) {
    int status;
    if (waitpid(tid, &status, WNOHANG | __WALL) != tid) return;
    if (WIFEXITED(status) || WIFSIGNALED(status)) handle_exit(tid, status);
    else if (WIFSTOPPED(status)) handle_stop(tid, status);
}

/* ------------------------------------------------------------------ */
/* commands                                                            */

static void do_reply(cmd *c) {
    shim_forget();
    tracee *t = tfind(c->tid);
    if (!t || (t->state != T_PYTHON && t->state != T_PYEXIT)) return; /* died meanwhile */
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0) return;
    if (t->state == T_PYEXIT) {
        int changed = 0;
        if (c->action == UMV_ACT_SET_RESULT) {
            r.rax = (unsigned long long)c->value;
            changed = 1;
        }
        if (t->restore_args) {
            /* The kernel keeps every register but rax, rcx and r11 across a
             * syscall, and programs rely on it: put back the arguments we
             * rewrote for the kernel. */
            r.rdi = t->orig_args[0]; r.rsi = t->orig_args[1]; r.rdx = t->orig_args[2];
            r.r10 = t->orig_args[3]; r.r8 = t->orig_args[4]; r.r9 = t->orig_args[5];
            t->restore_args = 0;
            changed = 1;
        }
        if (changed) ptrace(PTRACE_SETREGS, t->tid, 0, &r);
        resume(t, PTRACE_CONT, 0);
        return;
    }
    switch (c->action) {
    case UMV_ACT_SKIP:
        skip_with(t, &r, c->value);
        return;
    case UMV_ACT_CONT:
    case UMV_ACT_RUN_EXIT:
        if (c->has_args) {
            if (c->action == UMV_ACT_RUN_EXIT) {
                t->orig_args[0] = r.rdi; t->orig_args[1] = r.rsi; t->orig_args[2] = r.rdx;
                t->orig_args[3] = r.r10; t->orig_args[4] = r.r8; t->orig_args[5] = r.r9;
                t->restore_args = 1;
            }
            r.orig_rax = c->nr;
            r.rdi = c->args[0]; r.rsi = c->args[1]; r.rdx = c->args[2];
            r.r10 = c->args[3]; r.r8 = c->args[4]; r.r9 = c->args[5];
            ptrace(PTRACE_SETREGS, t->tid, 0, &r);
        }
        let_run(t, (long)r.orig_rax);
        resume(t, c->action == UMV_ACT_RUN_EXIT ? PTRACE_SYSCALL : PTRACE_CONT, 0);
        return;
    default:
        skip_with(t, &r, -EIO);
    }
}

static void do_view_set(cmd *c) {
    view *v = &views[c->tid];
    v->active = 1;
    int hides = (c->flags & ~v->flags) & UMV_VIEW_NO_VDSO;
    pthread_mutex_lock(&slock);
    v->flags = c->flags;
    shm_publish(c->tid);
    pthread_mutex_unlock(&slock);
    memcpy(v->claims, c->claims, UMV_BITMAP_BYTES);
    if (c->filter) {
        free(v->filter);
        v->filter = c->filter;
        v->filter_len = c->filter_len;
        memcpy(v->trap, (unsigned char *)c->filter + c->filter_len * sizeof(struct sock_filter), UMV_BITMAP_BYTES);
    }
    for (int b = 0; b < HBUCKETS; b++)
        for (proc *p = ptab[b]; p; p = p->next)
            if (p->view == c->tid && (needs_filter(p) || hides)) maybe_interrupt(p);
}

/* The first tracee.  The tracer thread must not wait here for the exec to
 * happen: under -S (or with a module claiming execve) the execve itself stops
 * at a seccomp stop that only this thread can resume.  So an exec failure is
 * reported by the child itself, as a shell would: a message and 126/127. */
static void do_spawn(cmd *c) {
    int go[2], ready[2], lsock[2] = {-1, -1};
    if (c->nfilter && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lsock) < 0)
        lsock[0] = lsock[1] = -1;
    if (pipe2(go, O_CLOEXEC) < 0) { cmd_done(c, -errno); return; }
    if (pipe2(ready, O_CLOEXEC) < 0) {
        close(go[0]); close(go[1]);
        cmd_done(c, -errno);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) { cmd_done(c, -errno); return; }
    if (pid == 0) {
        char b;
        close(go[1]);
        /* We made ourselves non-dumpable (umv_init) and the child inherits
         * that until its exec; a non-dumpable task cannot be seized by an
         * ordinary user.  So the child turns it back on and says so before
         * we seize it. */
        close(ready[0]);
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        if (write(ready[1], "r", 1) < 0) {}
        close(ready[1]);
        for (int i = 0; i < c->nreset; i++) signal(c->reset[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, &orig_mask, NULL);
        if (c->stdio)
            for (int i = 0; i < 3; i++)
                if (c->stdio[i] >= 0 && c->stdio[i] != i) dup2(c->stdio[i], i);
        if (read(go[0], &b, 1) != 1) _exit(127);
        int e = 0;
        const char *what = "cannot execute", *subject = c->path;
        if (c->pin_cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(c->pin_cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        if (c->cwd && chdir(c->cwd) < 0) {
            e = errno;
            what = "cannot change directory to";
            subject = c->cwd;
        }
        struct sock_fprog prog = {(unsigned short)c->filter_len, c->filter};
        struct sock_fprog nprog = {(unsigned short)c->nfilter_len, c->nfilter};
        if (!e && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) e = errno;
        int merged = 0;
        if (!e && lsock[1] >= 0) {
            /* The view's filter with the notified calls in it (RET_USER_NOTIF
             * where the view's has RET_TRACE), if this kernel gives us a
             * listener (EBUSY: something above us has one already); else
             * the view's own.  One filter, not the notifier's under the
             * view's: every filter a call meets is a run of
             * __seccomp_filter (ls -lR in a vfs view spent 8% of its time
             * there with two).  Our sendmsg is not among the notified. */
            long lfd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &nprog);
            if (lfd >= 0) {
                merged = 1;
                send_fd(lsock[1], (int)lfd);
                close((int)lfd);
            }
        }
        if (lsock[1] >= 0) close(lsock[1]);
        if (!e && !merged && syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) e = errno;
        if (!e) { execve(c->path, c->argv, c->envp); e = errno; }
        char msg[4200];
        int n = snprintf(msg, sizeof msg, "umview: %s %s: %s\n", what, subject, strerror(e));
        if (write(2, msg, n > 0 && n < (int)sizeof msg ? n : 0) < 0) {}
        _exit(e == ENOENT ? 127 : 126);
    }
    close(go[0]);
    close(ready[1]);
    if (lsock[1] >= 0) close(lsock[1]);
    /* A kick (KICK_SIG, no SA_RESTART) may end the read early; seizing a
     * child that has not made itself dumpable yet fails with EPERM for an
     * ordinary user, so wait for its word (or its end) whatever comes. */
    char r;
    while (read(ready[0], &r, 1) < 0 && errno == EINTR) {}
    close(ready[0]);
    int exec_opt = (views[c->tid].flags & UMV_VIEW_NO_VDSO) != 0;
    long opts = OPTS_BASE | (exec_opt ? PTRACE_O_TRACEEXEC : 0);
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)opts) < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(go[1]);
        if (lsock[0] >= 0) close(lsock[0]);
        cmd_done(c, -e);
        return;
    }
    proc *p = pnew(pid, c->tid, views[c->tid].trap);
    if (lsock[0] >= 0) {
        memcpy(p->notify, c->nfilter + c->nfilter_len, UMV_BITMAP_BYTES);
        p->has_notify = 1;
    }
    tnew(pid, p, T_RUNNING)->exec_opt = exec_opt;
    root_pid = pid;
    if (write(go[1], "x", 1) < 0) {}
    close(go[1]);
    /* The child sends the listener before its exec, or closes the socket
     * (exec, exit) without one.  The notifier takes it: we must not wait
     * here, the child may need us first (a signal-delivery-stop). */
    if (lsock[0] >= 0) notif_add(lsock[0], 1);
    cmd_done(c, pid);
}

static void run_commands(void) {
    for (;;) {
        pthread_mutex_lock(&qlock);
        cmd *c = cmd_head;
        if (c) {
            cmd_head = c->next;
            if (!cmd_head) cmd_tail = NULL;
        }
        pthread_mutex_unlock(&qlock);
        if (!c) return;
        switch (c->kind) {
        case CMD_REPLY: do_reply(c); free(c); break;
        case CMD_VIEW_SET: do_view_set(c); free(c); break;
        case CMD_VIEW_PATHS: do_view_paths(c); free(c); break;
        case CMD_SET_VIEW: {
            proc *p = pfind(c->tid);
            if (p && c->value >= 0 && c->value < UMV_MAX_VIEWS) {
                views[p->view].nprocs--;
                views[c->value].nprocs++;
                p->view = (int)c->value;
                shm_set_view(p->tgid, p->view);
                if (needs_filter(p)) maybe_interrupt(p);
            }
            cmd_done(c, p ? 0 : -ESRCH);
            break;
        }
        case CMD_SPAWN: do_spawn(c); break;
        case CMD_KILL: {
            /* c->tid: a view, or -1 for all */
            for (int b = 0; b < HBUCKETS; b++)
                for (tracee *t = ttab[b]; t; t = t->next)
                    if (c->tid < 0 || (t->p && t->p->view == c->tid)) kill(t->tid, (int)c->value);
            cmd_done(c, 0);
            break;
        }
        case CMD_STOP: stopping = 1; cmd_done(c, 0); break;
        case CMD_BOUNCE: {
            tracee *t = tfind(c->tid);
            if (t && __atomic_load_n(&t->bounce_nr, __ATOMIC_ACQUIRE))
                ptrace(PTRACE_INTERRUPT, c->tid, 0, 0);
            free(c);
            break;
        }
        }
    }
}

static void *tracer_main(void *arg) {
    (void)arg;
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, KICK_SIG);
    pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
    while (!stopping) {
        if (__atomic_exchange_n(&cmd_kick, 0, __ATOMIC_SEQ_CST)) {
            uint64_t v;
            if (read(cmd_fd, &v, 8) < 0) {}
            pthread_rwlock_wrlock(&tlock);
            run_commands();
            pthread_rwlock_unlock(&tlock);
            continue;
        }
        siginfo_t si;
        memset(&si, 0, sizeof si);
        long r = -1;
        int e = 0;
        if (sigsetjmp(wait_jb, 1) != 0) continue;   /* kicked out of the wait */
        wait_armed = 1;
        if (!__atomic_load_n(&cmd_kick, __ATOMIC_SEQ_CST)) {
            /* the raw syscall: glibc's waitid is a cancellation point with
             * state around the call, not a place to jump out of */
            r = syscall(SYS_waitid, P_ALL, 0, &si, WEXITED | WSTOPPED | WNOWAIT | __WALL, NULL);
            e = errno;
        }
        wait_armed = 0;
        if (r == 0 && si.si_pid > 0 && si.si_code == CLD_STOPPED) {
            /* a job-control stop of a child that is not a tracee (tracees'
             * stops are CLD_TRAPPED): nothing of ours, but WNOWAIT would
             * report it again and again, so take it */
            int status;
            if (waitpid(si.si_pid, &status, WNOHANG | WUNTRACED | __WALL) < 0) {}
        } else if (r == 0 && si.si_pid > 0) {
            pthread_rwlock_wrlock(&tlock);
            reap_one(si.si_pid);
            pthread_rwlock_unlock(&tlock);
        } else if (r < 0 && e == ECHILD) {
            /* no tracee yet (or any more): only a command can change that */
            struct pollfd pf = {cmd_fd, POLLIN, 0};
            if (poll(&pf, 1, -1) < 0) {}
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* API                                                                 */

int umv_init(void) {
    if (started) return 0;
    /* The mask the first process gets (do_spawn), as the program had it. */
    pthread_sigmask(SIG_SETMASK, NULL, &orig_mask);
    ev_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev_fd < 0 || cmd_fd < 0) return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_kick;
    sa.sa_flags = 0;   /* no SA_RESTART: the waits must end */
    sigemptyset(&sa.sa_mask);
    if (sigaction(KICK_SIG, &sa, &old_kick) < 0) return -errno;
    __atomic_store_n(&cmd_kick, 0, __ATOMIC_SEQ_CST);
    self_pid = getpid();
    stopping = 0;
    /* Not dumpable: /proc/OURPID/mem and friends are closed to the view's
     * processes (for a non-root user; root's CAP_SYS_PTRACE passes anyway). */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    int e = pthread_create(&tracer, NULL, tracer_main, NULL);
    if (e) return -e;
    started = 1;
    return 0;
}

int umv_event_fd(void) { return ev_fd; }

int umv_spawn(const char *path, char *const argv[], char *const envp[],
              const char *cwd, const void *filter, int filter_len,
              const void *nfilter, int nfilter_len, int viewno,
              int pin_cpu, const int *reset_signals, int nreset, const int *stdio) {
    if (!started) return -EINVAL;
    if (viewno < 0 || viewno >= UMV_MAX_VIEWS) return -EINVAL;
    cmd c = {0};
    c.kind = CMD_SPAWN;
    c.tid = viewno;
    c.path = path;
    c.argv = argv;
    c.envp = envp;
    c.cwd = cwd;
    c.filter = (struct sock_filter *)filter;
    c.filter_len = filter_len;
    pthread_mutex_lock(&nlock);
    int room = nl_count + nl_nsock < MAX_LISTENERS;
    pthread_mutex_unlock(&nlock);
    c.nfilter = room ? (struct sock_filter *)nfilter : NULL;
    c.nfilter_len = room ? nfilter_len : 0;
    c.pin_cpu = pin_cpu;
    c.reset = reset_signals;
    c.nreset = nreset;
    c.stdio = stdio;
    return push_cmd_wait(&c);
}

int umv_reply(int tid, int action, int64_t value, long nr, const uint64_t *args) {
    cmd *c = calloc(1, sizeof *c);
    c->kind = CMD_REPLY;
    c->tid = tid;
    c->action = action;
    c->value = value;
    c->nr = nr;
    if (args) {
        c->has_args = 1;
        memcpy(c->args, args, sizeof c->args);
    }
    push_cmd(c);
    return 0;
}

/* filter: a BPF program of filter_len instructions, followed in the same
 * buffer by UMV_BITMAP_BYTES bytes: the set of calls (and rule bits) it traps. */
int umv_view_set(int viewno, const unsigned char *bitmap, int flags,
                 const void *filter, int filter_len) {
    if (viewno < 0 || viewno >= UMV_MAX_VIEWS) return -EINVAL;
    cmd *c = calloc(1, sizeof *c);
    c->kind = CMD_VIEW_SET;
    c->tid = viewno;
    c->flags = flags;
    memcpy(c->claims, bitmap, UMV_BITMAP_BYTES);
    if (filter) {
        size_t n = filter_len * sizeof(struct sock_filter) + UMV_BITMAP_BYTES;
        c->filter = malloc(n);
        memcpy(c->filter, filter, n);
        c->filter_len = filter_len;
    }
    if (!started) { do_view_set(c); free(c); return 0; }
    push_cmd(c);
    return 0;
}

static void do_view_paths(struct cmd *c) {
    view *v = &views[c->tid];
    for (int i = 0; i < v->npasses; i++) {
        free(v->passes[i].guest);
        free(v->passes[i].host);
        free(v->passes[i].lower);
        if (v->passes[i].hfd >= 0) close(v->passes[i].hfd);
        if (v->passes[i].lfd >= 0) close(v->passes[i].lfd);
    }
    free(v->passes);
    v->passes = NULL;
    v->npasses = 0;
    free(v->paths);
    v->paths = NULL;
    v->paths_len = 0;
    char *blob = (char *)c->filter;  /* the blob travels in the filter field */
    if (!blob) { shm_publish_paths(c->tid, NULL); return; }
    /* 'P' entries (two strings) go to the pass table, the rest stay */
    int len = c->filter_len, out = 0, np = 0;
    for (const char *e = blob; e < blob + len; e += strlen(e) + 1)
        if (e[0] == 'P' || e[0] == 'O') np++;
    v->passes = np ? calloc(np, sizeof *v->passes) : NULL;
    for (char *e = blob; e < blob + len;) {
        size_t n = strlen(e) + 1;
        if ((e[0] == 'P' || e[0] == 'O') && e + n < blob + len) {
            /* 'P' guest, host; 'O' guest, upper, lower (an overlay) */
            char *host = e + n;
            size_t hn = strlen(host) + 1;
            char *lower = e[0] == 'O' && host + hn < blob + len ? host + hn : NULL;
            struct pass *ps = &v->passes[v->npasses];
            ps->hfd = open(host, O_PATH | O_DIRECTORY | O_CLOEXEC);
            ps->lfd = lower ? open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
            int ok = ps->hfd >= 0 && e[1] == '/' && host[0] == '/' &&
                     (e[0] == 'P' || (ps->lfd >= 0 && lower[0] == '/'));
            if (ok) {
                ps->guest = strdup(e + 1);
                ps->host = strdup(host);
                ps->glen = strlen(ps->guest);
                ps->hlen = strlen(ps->host);
                if (lower) {
                    ps->lower = strdup(lower);
                    ps->llen = strlen(lower);
                }
                v->npasses++;
            } else {
                if (ps->hfd >= 0) close(ps->hfd);
                if (ps->lfd >= 0) close(ps->lfd);
                memset(ps, 0, sizeof *ps);
            }
            e = lower ? lower + strlen(lower) + 1 : host + hn;
            continue;
        }
        memmove(blob + out, e, n);
        out += n;
        e += n;
    }
    v->paths = blob;
    v->paths_len = out;
    shm_publish_paths(c->tid, c->has_args ? c->claims : NULL);
}

int umv_view_set_paths(int viewno, const char *paths, int len, const unsigned char *shim_calls) {
    if (viewno < 0 || viewno >= UMV_MAX_VIEWS || len < 0) return -EINVAL;
    cmd *c = calloc(1, sizeof *c);
    c->kind = CMD_VIEW_PATHS;
    c->tid = viewno;
    if (shim_calls) {   /* the calls the shim may run (umvshm.h), in claims */
        memcpy(c->claims, shim_calls, UMV_SHM_CALLS / 8);
        c->has_args = 1;
    }
    if (paths) {
        c->filter = malloc(len + 1);
        memcpy(c->filter, paths, len);
        ((char *)c->filter)[len] = 0;
        c->filter_len = len;
    }
    if (!started) { do_view_paths(c); free(c); return 0; }
    if (shm) {   /* see paths_pending */
        struct umv_shm_paths *sp = &shm->vpaths[viewno];
        pthread_mutex_lock(&plock);
        paths_pending[viewno]++;
        if (!(sp->seq & 1)) __atomic_store_n(&sp->seq, sp->seq + 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&plock);
    }
    push_cmd(c);
    return 0;
}

int umv_set_process_view(int pid, int viewno) {
    cmd c = {0};
    c.kind = CMD_SET_VIEW;
    c.tid = pid;
    c.value = viewno;
    return push_cmd_wait(&c);
}

int umv_kill_view(int viewno, int sig) {
    cmd c = {0};
    c.kind = CMD_KILL;
    c.tid = viewno;
    c.value = sig;
    return push_cmd_wait(&c);
}

int umv_kill_all(int sig) { return umv_kill_view(-1, sig); }

void umv_get_stats(umv_stats *out) {
    *out = stats;
    out->tracees = ntracees;
}

int umv_shutdown(void) {
    if (!started) return 0;
    cmd c = {0};
    c.kind = CMD_STOP;
    push_cmd_wait(&c);
    pthread_join(tracer, NULL);
    notif_shutdown();
    umv_shm_stop();
    sigaction(KICK_SIG, &old_kick, NULL);
    close(ev_fd);
    close(cmd_fd);
    ev_fd = cmd_fd = -1;
    started = 0;
    return 0;
}
