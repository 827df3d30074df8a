// Small C helpers for what Swift cannot reach directly (CMSG macros for SCM_RIGHTS, mmap flags,
// acquire loads from memory another process writes, async-signal-safe stop flags).
#pragma once
#include "CSGuard.h"
#include "CSSocket.h"
#include <stddef.h>
#include <stdint.h>

/// Largest number of fds one vhost-user message carries (SET_MEM_TABLE: one per region, 8 regions).
#define CS_MAX_FDS 8

/// recvmsg() of up to `len` bytes, collecting SCM_RIGHTS fds (close-on-exec) into `fds`.
/// Returns bytes read (0 = peer closed) or -1 (errno set). `*nfds` is the number of fds received;
/// `*truncated` is set when the peer sent more fds than fit (the extra ones are lost by the kernel).
long cs_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int *truncated);

/// Reads exactly `len` bytes (no fds). Returns len, 0 on a clean EOF before any byte, -1 on error
/// or on EOF in the middle (errno = EPIPE).
long cs_read_full(int sock, void *buf, size_t len);

/// sendmsg() of all `len` bytes, the fds attached to the first chunk. MSG_NOSIGNAL: a closed
/// peer gives EPIPE, never SIGPIPE. Returns 0 or -1 (errno set).
int cs_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);

/// Unix stream sockets. Return the fd or -1 (errno set).
int cs_unix_listen(const char *path);
int cs_unix_accept(int listener, int timeout_ms);
int cs_unix_connect(const char *path);

/// Waits until one of two fds is readable or `timeout_ns` passes (ppoll). Bit 0/1 of the result:
/// fd a/b readable or hung up; -1 on error other than EINTR (EINTR returns 0).
int cs_wait2(int a, int b, long timeout_ns);

/// Read-only shared mapping of `len` bytes of `fd` from offset 0; NULL on failure (errno set).
void *cs_mmap_ro(int fd, size_t len);
int cs_munmap(void *p, size_t len);

/// Loads from memory the peers write concurrently. The acquire load orders the reads after it,
/// matching the writer's barrier before it publishes an index.
uint16_t cs_load16_acquire(const void *p);
uint16_t cs_load16(const void *p);
uint32_t cs_load32(const void *p);
uint64_t cs_load64(const void *p);

/// CLOCK_MONOTONIC in nanoseconds.
uint64_t cs_now_ns(void);

/// SIGINT/SIGTERM set a flag instead of killing the process, so a capture ends with a valid trace.
void cs_install_stop_handlers(void);
int cs_stop_requested(void);
void cs_request_stop(void);

/// Starts `argv[0]` (searched in PATH) with stdout and stderr to `out_fd` and stdin from /dev/null,
/// with an empty signal mask and default SIGINT/SIGTERM handling whatever the calling thread
/// blocks (test runners' threads block most signals, and children would inherit that).
/// Returns the pid or -1 (errno set).
int cs_spawn(char *const argv[], int out_fd);
/// Non-blocking wait: 1 if `pid` has exited (status in *status), 0 if still running, -1 on error.
int cs_reap(int pid, int *status);

/// ppoll over `n` fds for readability (or hang-up) up to `timeout_ns`; `ready[i]` is set to 1 for
/// each fd that is. Returns the number ready, 0 on timeout or EINTR, -1 on error.
int cs_wait_many(const int *fds, int n, long timeout_ns, uint8_t *ready);
/// A non-blocking, close-on-exec eventfd (for relaying kick/call notifications), or -1.
int cs_eventfd(void);
/// Reads an eventfd's counter (0 if none pending) / adds `v` to it. Return -1 on error.
long long cs_eventfd_take(int fd);
int cs_eventfd_add(int fd, uint64_t v);

/// Shared mapping of `len` bytes of `fd` from `offset` (page-aligned), read-only or read-write;
/// NULL on failure (errno set).
void *cs_mmap_shared(int fd, size_t len, long long offset, int writable);

/// memfd_create(name, MFD_CLOEXEC) of `size` bytes (test peers and `drive` build guest memory so).
/// Returns the fd or -1.
int cs_memfd(const char *name, long long size);
/// A blocking eventfd, as some peers hand over (tests use it to show nothing here blocks on it).
int cs_eventfd_blocking(void);
/// A release fence (test peers publish ring indices with it).
void cs_fence_release(void);
