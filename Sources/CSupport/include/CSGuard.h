// Guarded access to memory another process owns (a vhost-user front-end's memfd regions).
// The owner may shrink or truncate the file under our mapping at any time; touching a page beyond
// its end raises SIGBUS. Every access here runs under a per-thread recovery point: a SIGBUS or
// SIGSEGV whose address lies inside the range being accessed unwinds to it (siglongjmp) and the
// call returns -1 instead of killing the process. A fault anywhere else goes to the disposition
// that was installed before ours (the Swift runtime's backtracer, or the default), so real bugs
// still crash as usual.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// Installs the SIGBUS/SIGSEGV handler once per process (idempotent, thread-safe).
void cs_guard_install(void);

/// Copies `len` bytes from `src` (peer memory) to `dst` (ours). 0, or -1 if reading faulted.
int cs_guarded_read(void *dst, const void *src, size_t len);
/// `cs_guarded_read` of exactly 16 bytes (a split descriptor): two loads, no call to memcpy.
int cs_guarded_read16(void *dst, const void *src);
/// Copies `len` bytes from `src` (ours) to `dst` (peer memory). 0, or -1 if writing faulted.
int cs_guarded_write(void *dst, const void *src, size_t len);

/// Acquire load of a ring index: orders every later read after it, matching the writer's barrier
/// before it published the index. 0, or -1 if the load faulted.
int cs_guarded_load16_acquire(const void *p, uint16_t *out);
/// Release store of a ring index: every earlier write is visible before it. 0, or -1.
int cs_guarded_store16_release(void *p, uint16_t v);

/// Faults recovered so far by this process (for tests and diagnostics).
uint64_t cs_guard_recovered(void);

/// Test hook: in a forked child, with no handler before ours, takes a guarded fault (must be
/// recovered) and then an unguarded one (must kill). Returns the signal that ended the child
/// (SIGSEGV expected), 0 if it exited, -1 if the guarded fault was not recovered or fork failed.
int cs_guard_selftest_unguarded_fault(void);
