// Small C helpers for what Swift cannot reach directly (CMSG macros for SCM_RIGHTS, mmap flags).
#pragma once
#include <stddef.h>
#include <stdint.h>
