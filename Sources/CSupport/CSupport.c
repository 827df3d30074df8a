#define _GNU_SOURCE
#include "CSupport.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int fill_addr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path)) { errno = ENAMETOOLONG; return -1; }
    strcpy(a->sun_path, path);
    return 0;
}

int cs_unix_listen(const char *path) {
    struct sockaddr_un a;
    if (fill_addr(&a, path) < 0) return -1;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0) { int e = errno; close(s); errno = e; return -1; }
    return s;
}

int cs_unix_accept(int listener, int timeout_ms) {
    struct pollfd p = { .fd = listener, .events = POLLIN };
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) { if (cs_stop_requested()) { errno = EINTR; return -1; } continue; }
        if (r < 0) return -1;
        if (r == 0) { errno = ETIMEDOUT; return -1; }
        break;
    }
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC);
}

int cs_unix_connect(const char *path) {
    struct sockaddr_un a;
    if (fill_addr(&a, path) < 0) return -1;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) { int e = errno; close(s); errno = e; return -1; }
    return s;
}

uint64_t cs_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t stop_flag = 0;
static void on_stop(int sig) { (void)sig; stop_flag = 1; }

void cs_install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cs_stop_requested(void) { return stop_flag != 0; }
void cs_request_stop(void) { stop_flag = 1; }

#include <spawn.h>
#include <sys/wait.h>
extern char **environ;

int cs_spawn(char *const argv[], int out_fd) { return cs_spawn_in(argv, -1, out_fd); }

int cs_spawn_in(char *const argv[], int in_fd, int out_fd) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_init(&fa);
    if (in_fd >= 0) posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    pid_t pid;
    int r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r != 0) { errno = r; return -1; }
    return pid;
}

int cs_reap(int pid, int *status) {
    int r = waitpid(pid, status, WNOHANG);
    if (r < 0) return -1;
    return r == pid ? 1 : 0;
}

#include <sys/eventfd.h>

int cs_wait_many(const int *fds, int n, long timeout_ns, uint8_t *ready) {
    if (n <= 0 || n > 4096) { errno = EINVAL; return -1; }
    struct pollfd p[n];
    for (int i = 0; i < n; i++) { p[i].fd = fds[i]; p[i].events = POLLIN; p[i].revents = 0; }
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000L, .tv_nsec = timeout_ns % 1000000000L };
    int r = ppoll(p, (nfds_t)n, timeout_ns < 0 ? NULL : &ts, NULL);
    if (r < 0) return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) ready[i] = (p[i].revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
    return r;
}

int cs_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int cs_munmap(void *p, size_t len) { return munmap(p, len); }



void *cs_mmap_shared(int fd, size_t len, long long offset, int writable) {
    void *p = mmap(NULL, len, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, (off_t)offset);
    return p == MAP_FAILED ? NULL : p;
}

int cs_memfd(const char *name, long long size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}
int cs_memfd_sealed(const char *name, long long size) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int e = errno; close(fd); errno = e; return -1;
    }
    return fd;
}
int cs_eventfd_blocking(void) { return eventfd(0, EFD_CLOEXEC); }
void cs_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
void cs_fence_full(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
