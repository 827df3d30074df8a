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

long cs_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int *truncated) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int) * CS_MAX_FDS)]; struct cmsghdr align; } ctl;
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    *nfds = 0;
    *truncated = 0;
    long n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if (msg.msg_flags & MSG_CTRUNC) *truncated = 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *p = (int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            if (*nfds < maxfds) fds[(*nfds)++] = p[i];
            else { close(p[i]); *truncated = 1; }
        }
    }
    return n;
}

long cs_read_full(int sock, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        long n = recv(sock, (char *)buf + got, len - got, 0);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        if (n == 0) { if (got == 0) return 0; errno = EPIPE; return -1; }
        got += (size_t)n;
    }
    return (long)got;
}

int cs_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    size_t sent = 0;
    int first = 1;
    union { char buf[CMSG_SPACE(sizeof(int) * CS_MAX_FDS)]; struct cmsghdr align; } ctl;
    if (nfds > CS_MAX_FDS) { errno = EINVAL; return -1; }
    while (sent < len || (first && len == 0)) {
        struct iovec iov = { .iov_base = (char *)buf + sent, .iov_len = len - sent };
        struct msghdr msg = { 0 };
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (first && nfds > 0) {
            memset(ctl.buf, 0, sizeof(ctl.buf));
            msg.msg_control = ctl.buf;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        long n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        first = 0;
        sent += (size_t)n;
        if (len == 0) break;
    }
    return 0;
}

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

int cs_wait2(int a, int b, long timeout_ns) {
    struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000L, .tv_nsec = timeout_ns % 1000000000L };
    int r = ppoll(p, 2, timeout_ns < 0 ? NULL : &ts, NULL);
    if (r < 0) return errno == EINTR ? 0 : -1;
    int out = 0;
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) out |= 1;
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) out |= 2;
    return out;
}

void *cs_mmap_ro(int fd, size_t len) {
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

int cs_munmap(void *p, size_t len) { return munmap(p, len); }

uint16_t cs_load16_acquire(const void *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE); }
uint16_t cs_load16(const void *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED); }
uint32_t cs_load32(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED); }
uint64_t cs_load64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED); }

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

int cs_spawn(char *const argv[], int out_fd) {
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
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
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

long long cs_eventfd_take(int fd) {
    uint64_t v = 0;
    // The front-end's fd may be blocking: read only after poll said it is readable.
    long n = read(fd, &v, sizeof v);
    if (n == sizeof v) return (long long)v;
    if (n < 0 && errno == EAGAIN) return 0;
    return -1;
}

int cs_eventfd_add(int fd, uint64_t v) { return write(fd, &v, sizeof v) == sizeof v ? 0 : -1; }

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
int cs_eventfd_blocking(void) { return eventfd(0, EFD_CLOEXEC); }
void cs_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
