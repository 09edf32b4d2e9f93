// Shared setup for integration tests: a fresh server process on port 0 with its own database.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/http_client.h"
#include "support/server_process.h"

namespace jiceng::testing {

// A temporary directory removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Starts `jiceng serve` on 127.0.0.1:0 with `db` and extra flags.
std::unique_ptr<ServerProcess> StartServer(const std::string& db,
                                           const std::vector<std::string>& extra = {});

// Reads a whole file.
std::string ReadFile(const std::filesystem::path& p);

}  // namespace jiceng::testing
