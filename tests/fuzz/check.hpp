// What the fuzz targets share: CHECK_FUZZ, a check of what must hold for any
// input, which ends the process (a crash to libFuzzer, a failure to the
// replay test) with the condition and its place.
#pragma once

#include <cstdio>
#include <cstdlib>

#define CHECK_FUZZ(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (0)
