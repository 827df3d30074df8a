#define _GNU_SOURCE
#include "CSGuard.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

// Per-thread recovery point and the range it covers. initial-exec TLS: reading it in a signal
// handler never allocates (the targets are linked statically into the executable).
static __thread sigjmp_buf *volatile guard_env __attribute__((tls_model("initial-exec")));
static __thread const char *volatile guard_lo __attribute__((tls_model("initial-exec")));
static __thread const char *volatile guard_hi __attribute__((tls_model("initial-exec")));

static struct sigaction prev_bus, prev_segv;
static pthread_once_t once = PTHREAD_ONCE_INIT;
/// Set once the handler is in place: the guarded operations test it before calling pthread_once.
static int installed;
static volatile uint64_t recovered;

static void handler(int sig, siginfo_t *si, void *uc) {
    sigjmp_buf *env = guard_env;
    const char *a = (const char *)si->si_addr;
    if (env && a >= guard_lo && a < guard_hi) {
        guard_env = NULL;
        __atomic_fetch_add(&recovered, 1, __ATOMIC_RELAXED);
        // SA_NODEFER: the signal is not blocked while we run, so leaving without restoring the
        // mask (sigsetjmp(..., 0), no syscall on the fast path) leaves the thread's mask intact.
        siglongjmp(*env, 1);
    }
    // Not a guarded access: behave as if we were not installed.
    struct sigaction *prev = sig == SIGBUS ? &prev_bus : &prev_segv;
    if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) { prev->sa_sigaction(sig, si, uc); return; }
    if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN && prev->sa_handler) { prev->sa_handler(sig); return; }
    // Default disposition: restore it and return; the faulting instruction runs again and the
    // process dies of the signal as it would have without us.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
}

static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &prev_bus);
    sigaction(SIGSEGV, &sa, &prev_segv);
    __atomic_store_n(&installed, 1, __ATOMIC_RELEASE);
}

void cs_guard_install(void) { pthread_once(&once, install); }

uint64_t cs_guard_recovered(void) { return __atomic_load_n(&recovered, __ATOMIC_RELAXED); }

// Each guarded operation: arm (range, then recovery point), access, disarm. The signal fences keep
// the compiler from moving the access outside the armed window; nothing used after a longjmp is
// held in a local that the access modified.
#define GUARDED(lo, len, body)                                   \
    do {                                                         \
        sigjmp_buf env;                                          \
        if (!__atomic_load_n(&installed, __ATOMIC_ACQUIRE))      \
            cs_guard_install();                                  \
        guard_lo = (const char *)(lo);                           \
        guard_hi = (const char *)(lo) + (len);                   \
        if (sigsetjmp(env, 0)) {                                 \
            guard_lo = guard_hi = NULL;                          \
            return -1;                                           \
        }                                                        \
        guard_env = &env;                                        \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                 \
        body;                                                    \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                 \
        guard_env = NULL;                                        \
        guard_lo = guard_hi = NULL;                              \
        return 0;                                                \
    } while (0)

// memcpy reads each source byte once (peer memory may change under it; a torn copy is what a
// concurrent writer gives any reader) and is fast even in debug builds, where this file is -O0.
int cs_guarded_read(void *dst, const void *src, size_t len) {
    GUARDED(src, len, { memcpy(dst, src, len); });
}

int cs_guarded_read16(void *dst, const void *src) {
    GUARDED(src, 16, { memcpy(dst, src, 16); });
}

int cs_guarded_write(void *dst, const void *src, size_t len) {
    GUARDED(dst, len, { memcpy(dst, src, len); });
}

int cs_guarded_load16_acquire(const void *p, uint16_t *out) {
    GUARDED(p, 2, { *out = __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE); });
}

int cs_guarded_store16_release(void *p, uint16_t v) {
    GUARDED(p, 2, { __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE); });
}

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int cs_guard_selftest_unguarded_fault(void) {
    cs_guard_install();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        // As if nothing had been installed before us (no backtracer in the way).
        memset(&prev_segv, 0, sizeof prev_segv);
        prev_segv.sa_handler = SIG_DFL;
        void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char c;
        if (p == MAP_FAILED || cs_guarded_read(&c, p, 1) != -1) _exit(3);
        *(volatile char *)p = 1;   // unguarded: must not be swallowed
        _exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    if (WIFSIGNALED(st)) return WTERMSIG(st);
    return WEXITSTATUS(st) == 3 ? -1 : 0;
}
