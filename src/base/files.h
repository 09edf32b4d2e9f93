// base/files: reading a whole file, and the system's temporary directory.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace jiceng {

// The bytes of the file at `path`; nullopt when it cannot be opened or read.
std::optional<std::string> ReadWholeFile(const std::filesystem::path& path);

// The system's temporary directory ($TMPDIR), or /tmp when it cannot be determined.
std::filesystem::path TempDirectory();

}  // namespace jiceng
