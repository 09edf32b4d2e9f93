#include "base/ids.h"

#include <chrono>
#include <random>

namespace jiceng {

namespace {

std::mt19937_64& ThreadRng() {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  return rng;
}

// The 128 bits hi:lo as 8-4-4-4-12 lower-case hex.
std::string FormatUuid(uint64_t hi, uint64_t lo) {
  static const char* kHex = "0123456789abcdef";
  std::string s(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v) {
    for (int i = 15; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      s[pos++] = kHex[(v >> (i * 4)) & 0xF];
    }
  };
  put(hi);
  put(lo);
  return s;
}

constexpr uint64_t kVariant = 0x8000000000000000ULL;  // variant 10
constexpr uint64_t kVariantMask = 0x3FFFFFFFFFFFFFFFULL;

}  // namespace

std::string NewUuid() {
  auto& rng = ThreadRng();
  uint64_t a = rng(), b = rng();
  a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  return FormatUuid(a, (b & kVariantMask) | kVariant);
}

std::string UuidV7(uint64_t unix_ms, uint64_t rand_a, uint64_t rand_b) {
  uint64_t hi = ((unix_ms & 0xFFFFFFFFFFFFULL) << 16) | 0x7000ULL | (rand_a & 0x0FFFULL);
  return FormatUuid(hi, (rand_b & kVariantMask) | kVariant);
}

std::string NewResourceId() {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  auto& rng = ThreadRng();
  uint64_t a = rng(), b = rng();
  return UuidV7(static_cast<uint64_t>(now.count()), a, b);
}

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ULL;  // offset basis
  for (unsigned char ch : bytes) {
    h ^= ch;
    h *= 1099511628211ULL;  // prime
  }
  return h;
}

}  // namespace jiceng
