#ifndef CFUZZERDRIVER_H
#define CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point when the program has its own main (libFuzzer >= 11). Only referenced
   when conformance-fuzz is built with -sanitize=fuzzer -DFUZZING (scripts/fuzz.sh), which links
   libFuzzer; the normal build never calls it. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
