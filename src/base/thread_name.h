#pragma once

#include <pthread.h>

namespace jiceng {

// Names the calling thread as `top`, `perf` and gdb show it (at most 15 characters).
inline void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace jiceng
