#define _GNU_SOURCE
#include "CSSocket.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int cs_set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

long cs_recv_nb(int sock, void *buf, size_t len, int *fds, int *nfds, int *ctrunc) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int) * CS_RECV_FDS)]; struct cmsghdr align; } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    *nfds = 0;
    *ctrunc = 0;
    long n;
    do { n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if (msg.msg_flags & MSG_CTRUNC) *ctrunc = 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[CS_RECV_FDS];
        if (count > CS_RECV_FDS) count = CS_RECV_FDS;
        memcpy(got, CMSG_DATA(c), sizeof(int) * (size_t)count);
        for (int i = 0; i < count; i++) {
            if (*nfds < CS_RECV_FDS) fds[(*nfds)++] = got[i];
            else { close(got[i]); *ctrunc = 1; }
        }
    }
    return n;
}

long cs_send_nb(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int) * CS_SEND_FDS)]; struct cmsghdr align; } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > CS_SEND_FDS) { errno = EINVAL; return -1; }
    if (nfds > 0) {
        memset(ctl.buf, 0, sizeof ctl.buf);
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    long n;
    do { n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

int cs_poll_one(int fd, int events, long timeout_ns) {
    struct pollfd p = { .fd = fd, .events = (short)events, .revents = 0 };
    if (timeout_ns < 0) timeout_ns = 0;
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000L, .tv_nsec = timeout_ns % 1000000000L };
    int r = ppoll(&p, 1, &ts, NULL);
    if (r < 0) return errno == EINTR ? 0 : -1;
    return r == 0 ? 0 : p.revents;
}

int cs_unix_connect_nb(const char *path) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(a.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return -1;
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { int e = errno; close(s); errno = e; return -1; }
    return s;
}

int cs_is_eventfd(int fd) {
    char path[64], target[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long n = readlink(path, target, sizeof target - 1);
    if (n < 0) return -1;
    target[n] = 0;
    return strcmp(target, "anon_inode:[eventfd]") == 0;
}

// The fd's file status flags are shared with every holder of the file description (the peer
// too), so O_NONBLOCK is set only around our own call and put back at once.
static int begin_nb(int fd, int *restore) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    *restore = -1;
    if (!(fl & O_NONBLOCK)) {
        if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
        *restore = fl;
    }
    return 0;
}
static void end_nb(int fd, int restore) { if (restore >= 0) fcntl(fd, F_SETFL, restore); }

long long cs_eventfd_take_nb(int fd) {
    int restore;
    if (begin_nb(fd, &restore) < 0) return -1;
    uint64_t v = 0;
    long n;
    do { n = read(fd, &v, sizeof v); } while (n < 0 && errno == EINTR);
    int e = errno;
    end_nb(fd, restore);
    if (n == sizeof v) return (long long)(v > (uint64_t)INT64_MAX ? INT64_MAX : v);
    if (n < 0 && e == EAGAIN) return 0;
    errno = n < 0 ? e : EIO;
    return -1;
}

int cs_eventfd_add_nb(int fd, uint64_t v) {
    int restore;
    if (begin_nb(fd, &restore) < 0) return -1;
    long n;
    do { n = write(fd, &v, sizeof v); } while (n < 0 && errno == EINTR);
    int e = errno;
    end_nb(fd, restore);
    if (n == sizeof v) return 0;
    if (n < 0 && e == EAGAIN) return 1;
    errno = n < 0 ? e : EIO;
    return -1;
}

int cs_open_fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;   // the directory stream's own fd
}

int cs_accept_nb(int listener) {
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}
