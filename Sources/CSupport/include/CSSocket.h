// Non-blocking Unix-socket primitives for vhost-user framing. Nothing here ever blocks: callers wait
// with cs_poll_one (bounded) and retry, so every socket operation obeys a deadline and a stop flag.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// Control buffer capacity for one recvmsg: more than any vhost-user message may carry (8), so an
/// excess is seen and reported instead of silently cut by the kernel.
#define CS_RECV_FDS 32

/// Sets O_NONBLOCK on `fd` (a socket the caller owns). 0 or -1.
int cs_set_nonblocking(int fd);

/// One non-blocking recvmsg of up to `len` bytes with SCM_RIGHTS fds (close-on-exec) collected into
/// `fds` (capacity CS_RECV_FDS). Returns bytes read, 0 on EOF, -1 with errno (EAGAIN: nothing yet).
/// `*ctrunc` is set when the kernel dropped fds that did not fit.
long cs_recv_nb(int sock, void *buf, size_t len, int *fds, int *nfds, int *ctrunc);

/// Most fds one sendmsg may carry (the kernel's SCM_MAX_FD): test peers send more than any
/// vhost-user message may, to see them refused.
#define CS_SEND_FDS 253

/// One non-blocking sendmsg of up to `len` bytes, with `nfds` (<= CS_SEND_FDS) fds attached when nfds > 0.
/// MSG_NOSIGNAL: a closed peer gives EPIPE, never SIGPIPE. Returns bytes sent or -1 with errno.
long cs_send_nb(int sock, const void *buf, size_t len, const int *fds, int nfds);

/// ppoll on one fd for `events` (POLLIN = 1, POLLOUT = 4) up to `timeout_ns`. Returns the revents
/// (POLLHUP = 16, POLLERR = 8 included), 0 on timeout or EINTR, -1 on error.
int cs_poll_one(int fd, int events, long timeout_ns);

/// Connects to a Unix socket without blocking past the connect itself (Unix connects complete or
/// fail at once, or EAGAIN when the backlog is full). Returns the fd (close-on-exec) or -1.
int cs_unix_connect_nb(const char *path);

/// Whether `fd` refers to an eventfd (checked through /proc/self/fd). 1, 0, or -1 on error.
int cs_is_eventfd(int fd);

/// Reads an eventfd's counter without blocking even if the fd's own file status is blocking (the
/// flag is set for the one call and restored). Returns the count, 0 if none, -1 on error.
long long cs_eventfd_take_nb(int fd);
/// Adds `v` to an eventfd's counter without blocking, likewise. 0, 1 if it would block (the counter
/// is near its limit; nothing was added), -1 on error.
int cs_eventfd_add_nb(int fd, uint64_t v);

/// Number of open fds of this process (/proc/self/fd), for leak tests; -1 on error.
int cs_open_fd_count(void);

/// accept4 without blocking (the listener is non-blocking): the new fd (close-on-exec,
/// non-blocking) or -1 with errno (EAGAIN: nobody waiting).
int cs_accept_nb(int listener);
