#include "integration/integration_env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

namespace jiceng::testing {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("jiceng-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::unique_ptr<ServerProcess> StartServer(const std::string& db,
                                           const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"serve", "--db", db, "--listen", "127.0.0.1:0", "--no-access-log"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = ServerProcess::Start(JICENG_BINARY, args);
  if (!p.ok()) {
    ADD_FAILURE() << "server did not start: " << p.error().message;
    return nullptr;
  }
  return std::move(*p);
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace jiceng::testing
