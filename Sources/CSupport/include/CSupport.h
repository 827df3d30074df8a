// Small C helpers for what Swift cannot reach directly: SCM_RIGHTS and non-blocking sockets
// (CSSocket.h), guarded access to peer memory (CSGuard.h), mmap flags, async-signal-safe stop flags.
#pragma once
#include "CSGuard.h"
#include "CSSocket.h"
#include <stddef.h>
#include <stdint.h>

/// Unix stream sockets. Return the fd or -1 (errno set).
int cs_unix_listen(const char *path);
int cs_unix_accept(int listener, int timeout_ms);
int cs_unix_connect(const char *path);

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
/// As cs_spawn, with stdin from in_fd (-1: /dev/null).
int cs_spawn_in(char *const argv[], int in_fd, int out_fd);
/// Non-blocking wait: 1 if `pid` has exited (status in *status), 0 if still running, -1 on error.
int cs_reap(int pid, int *status);

/// ppoll over `n` fds for readability (or hang-up) up to `timeout_ns`; `ready[i]` is set to 1 for
/// each fd that is. Returns the number ready, 0 on timeout or EINTR, -1 on error.
int cs_wait_many(const int *fds, int n, long timeout_ns, uint8_t *ready);
/// A non-blocking, close-on-exec eventfd (for relaying kick/call notifications), or -1.
int cs_eventfd(void);
int cs_munmap(void *p, size_t len);

/// Shared mapping of `len` bytes of `fd` from `offset` (page-aligned), read-only or read-write;
/// NULL on failure (errno set).
void *cs_mmap_shared(int fd, size_t len, long long offset, int writable);

/// memfd_create(name, MFD_CLOEXEC) of `size` bytes (test peers and `drive` build guest memory so).
/// Returns the fd or -1.
int cs_memfd(const char *name, long long size);
/// Like cs_memfd, but sealed against shrinking and growing: a peer that maps it cannot truncate
/// the file under the creator's own mapping (`drive` writes its guest memory directly).
int cs_memfd_sealed(const char *name, long long size);
/// A blocking eventfd, as some peers hand over (tests use it to show nothing here blocks on it).
int cs_eventfd_blocking(void);
/// A release fence (test peers publish ring indices with it).
void cs_fence_release(void);
/// A full (sequentially consistent) fence: a relay publishes an index, then reads the other side's
/// suppression field, as virtio's notification protocol requires (`virtio_mb`).
void cs_fence_full(void);
