// Tests of tests/support against the real Server in a child process.
#include <gtest/gtest.h>

#include "support/http_client.h"
#include "support/server_process.h"

namespace jiceng::testing {
namespace {

TEST(ServerProcessTest, StartsReportsPortAndStopsOnSigterm) {
  auto proc = ServerProcess::Start(JICENG_HTTP_ECHO_SERVER, {"--listen", "127.0.0.1:0"});
  ASSERT_TRUE(proc.ok()) << proc.error().message;
  ASSERT_NE((*proc)->port(), 0);
  HttpClient client("127.0.0.1", (*proc)->port());
  for (int i = 0; i < 3; ++i) {
    auto res = client.Send("GET", "/fhir/Patient/1");
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, R"({"resourceType":"Patient","id":"1","active":true})");
  }
  EXPECT_EQ(client.connects(), 1);
  auto posted = client.Send("POST", "/echo", "hello", {{"Content-Type", "text/plain"}});
  ASSERT_TRUE(posted.ok());
  EXPECT_EQ(posted->body, "hello");
  (*proc)->Kill(SIGTERM);
  EXPECT_EQ((*proc)->Wait(), 0);
  // The access log went to stdout, one JSON line per request.
  EXPECT_NE((*proc)->Output().find(R"("target":"/fhir/Patient/1","status":200)"),
            std::string::npos)
      << (*proc)->Output();
}

TEST(ServerProcessTest, DestructorKillsChild) {
  auto proc = ServerProcess::Start(JICENG_HTTP_ECHO_SERVER, {"--listen", "127.0.0.1:0"});
  ASSERT_TRUE(proc.ok());
  pid_t pid = (*proc)->pid();
  proc = Internal("drop");  // destroys the process handle
  EXPECT_NE(kill(pid, 0), 0);  // reaped: no such process
}

TEST(ServerProcessTest, FailsWhenChildExitsWithoutListening) {
  auto proc = ServerProcess::Start(JICENG_HTTP_ECHO_SERVER, {"--listen", "not-an-address"});
  EXPECT_FALSE(proc.ok());
}

}  // namespace
}  // namespace jiceng::testing
