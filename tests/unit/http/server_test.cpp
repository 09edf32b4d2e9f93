#include "http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "base/metrics.h"
#include "support/http_client.h"

namespace jiceng::http {
namespace {

using jiceng::testing::HttpClient;
using jiceng::testing::RawConnection;
using namespace std::chrono_literals;

// Runs a Server on 127.0.0.1:0 in a background thread.
class RunningServer {
 public:
  RunningServer(Config config, Handler handler) : server_(WithDefaults(config), std::move(handler)) {
    auto port = server_.Start();
    EXPECT_TRUE(port.ok()) << (port.ok() ? "" : port.error().message);
    port_ = port.ok() ? *port : 0;
    thread_ = std::thread([this] {
      server_.Run();
      stopped_ = true;
    });
  }
  ~RunningServer() { StopAndJoin(); }

  void StopAndJoin() {
    if (!thread_.joinable()) return;
    server_.Stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  Server& server() { return server_; }
  bool stopped() const { return stopped_; }

 private:
  static Config WithDefaults(Config c) {
    c.listen = "127.0.0.1:0";
    c.access_log = false;
    if (c.threads == 0) c.threads = 4;
    return c;
  }
  Server server_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

api::Response Text(std::string body) {
  api::Response r;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

TEST(ServerTest, PortZeroPicksDistinctFreePorts) {
  RunningServer a({}, [](api::Request&) { return Text("a"); });
  RunningServer b({}, [](api::Request&) { return Text("b"); });
  EXPECT_NE(a.port(), 0);
  EXPECT_NE(b.port(), 0);
  EXPECT_NE(a.port(), b.port());
}

TEST(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  std::mutex mu;
  std::vector<api::Request> seen;
  RunningServer s({}, [&](api::Request& req) {
    std::lock_guard lock(mu);
    seen.push_back(req);
    auto r = Text("n" + std::to_string(seen.size()));
    r.SetHeader("ETag", "W/\"1\"");
    return r;
  });
  HttpClient client("127.0.0.1", s.port());
  for (int i = 1; i <= 5; ++i) {
    auto res = client.Send("GET", "/fhir/Patient?name=wang+li&given=%E7%8E%8B", "",
                           {{"X-Custom-Header", "v"}});
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "n" + std::to_string(i));
    EXPECT_EQ(res->Header("connection"), "keep-alive");
    EXPECT_EQ(res->Header("server"), "jiceng");
    EXPECT_EQ(res->Header("etag"), "W/\"1\"");
    EXPECT_EQ(res->Header("content-type"), "text/plain");
  }
  EXPECT_EQ(client.connects(), 1);
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 5u);
  const api::Request& r = seen[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/fhir/Patient?name=wang+li&given=%E7%8E%8B");
  EXPECT_EQ(r.path, "/fhir/Patient");
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(r.query, (Pairs{{"name", "wang li"}, {"given", "王"}}));
  EXPECT_EQ(r.Header("x-custom-header"), "v");
  EXPECT_EQ(r.remote, "127.0.0.1");
  EXPECT_EQ(r.scheme, "http");
}

TEST(ServerTest, PostBodyAndFormBodyReachHandlerUntouched) {
  RunningServer s({}, [](api::Request& req) { return Text(req.method + ":" + req.body); });
  HttpClient client("127.0.0.1", s.port());
  auto res = client.Send("POST", "/fhir/Patient/_search", "name=wang+li&_count=10",
                         {{"Content-Type", "application/x-www-form-urlencoded"}});
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, "POST:name=wang+li&_count=10");
}

TEST(ServerTest, HeadOmitsBodyButKeepsContentLength) {
  RunningServer s({}, [](api::Request&) { return Text("twelve bytes"); });
  HttpClient client("127.0.0.1", s.port());
  auto res = client.Send("HEAD", "/fhir/Patient/1");
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Header("content-length"), "12");
  EXPECT_EQ(res->body, "");
  // The connection is still usable: the HEAD response had no body on the wire.
  auto next = client.Send("GET", "/fhir/Patient/1");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->body, "twelve bytes");
  EXPECT_EQ(client.connects(), 1);
}

TEST(ServerTest, NoContentHasNoBody) {
  RunningServer s({}, [](api::Request&) {
    api::Response r;
    r.status = 204;
    return r;
  });
  HttpClient client("127.0.0.1", s.port());
  auto res = client.Send("DELETE", "/fhir/Patient/1");
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 204);
  EXPECT_TRUE(client.Send("GET", "/x").ok());
  EXPECT_EQ(client.connects(), 1);
}

TEST(ServerTest, BodyTooLargeIs413OperationOutcome) {
  Config c;
  c.limits.max_body_bytes = 1024;
  std::atomic<int> calls{0};
  RunningServer s(c, [&](api::Request&) {
    ++calls;
    return Text("ok");
  });
  HttpClient client("127.0.0.1", s.port());
  auto res = client.Send("POST", "/fhir", std::string(2000, 'x'));
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(res->Header("content-type"), "application/fhir+json");
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_NE(res->body.find(R"("resourceType":"OperationOutcome")"), std::string::npos);
  EXPECT_NE(res->body.find(R"("code":"too-costly")"), std::string::npos);
  auto ok = client.Send("POST", "/fhir", std::string(1000, 'x'));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(calls, 1);
}

TEST(ServerTest, HeaderTooLargeIs431) {
  Config c;
  c.limits.max_header_bytes = 1024;
  RunningServer s(c, [](api::Request&) { return Text("ok"); });
  HttpClient client("127.0.0.1", s.port());
  auto res = client.Send("GET", "/fhir", "", {{"X-Big", std::string(2000, 'h')}});
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 431);
  EXPECT_NE(res->body.find("OperationOutcome"), std::string::npos);
}

TEST(ServerTest, GarbageIs400) {
  RunningServer s({}, [](api::Request&) { return Text("ok"); });
  for (std::string garbage : {std::string("\x01\x02\x03 nonsense\r\n\r\n"),
                              std::string("GET /x HTTP/9.9\r\n\r\n"),
                              std::string("GET /x HTTP/1.1\r\nContent-Length: zz\r\n\r\n"),
                              std::string("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n")}) {
    auto conn = RawConnection::Connect("127.0.0.1", s.port());
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE((*conn)->Write(garbage));
    auto got = (*conn)->ReadUntilClose(5s);
    EXPECT_EQ(got.data.rfind("HTTP/1.1 400", 0), 0u) << got.data;
    EXPECT_NE(got.data.find("OperationOutcome"), std::string::npos);
  }
  // Still serving.
  HttpClient client("127.0.0.1", s.port());
  EXPECT_EQ(client.Send("GET", "/x")->status, 200);
}

TEST(ServerTest, HandlerExceptionIs500) {
  RunningServer s({}, [](api::Request& req) -> api::Response {
    if (req.path == "/boom") throw std::runtime_error("kaboom");
    if (req.path == "/int") throw 42;
    return Text("ok");
  });
  HttpClient client("127.0.0.1", s.port());
  auto res = client.Send("GET", "/boom");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(res->Header("content-type"), "application/fhir+json");
  EXPECT_NE(res->body.find("kaboom"), std::string::npos);
  EXPECT_EQ(client.Send("GET", "/int")->status, 500);
  EXPECT_EQ(client.Send("GET", "/fine")->status, 200);
  EXPECT_EQ(client.connects(), 1);
}

TEST(ServerTest, HealthzAndMetrics) {
  RunningServer s({}, [](api::Request&) { return Text("ok"); });
  HttpClient client("127.0.0.1", s.port());
  auto health = client.Send("GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, R"({"status":"ok"})");
  ASSERT_EQ(client.Send("GET", "/fhir/Observation/abc")->status, 200);
  auto metrics = client.Send("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("jiceng_http_requests_total"), std::string::npos);
  EXPECT_NE(metrics->body.find(R"(route="/fhir/{type}/{id}")"), std::string::npos);
  EXPECT_NE(metrics->body.find("jiceng_http_request_duration_seconds_bucket"),
            std::string::npos);
  EXPECT_EQ(metrics->body.find("abc"), std::string::npos);  // ids never become labels
  EXPECT_NE(metrics->body.find(R"(jiceng_http_state{name="connections"})"), std::string::npos);
}

TEST(ServerTest, Expect100ContinueGetsInterimResponse) {
  RunningServer s({}, [](api::Request& req) { return Text(req.body); });
  auto conn = RawConnection::Connect("127.0.0.1", s.port());
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Write(
      "POST /fhir HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = (*conn)->ReadUntil("\r\n\r\n", 5s);
  EXPECT_EQ(interim.data.rfind("HTTP/1.1 100 Continue", 0), 0u) << interim.data;
  ASSERT_TRUE((*conn)->Write("hello"));
  auto final_response = (*conn)->ReadUntil("hello", 5s);
  EXPECT_EQ(final_response.data.rfind("HTTP/1.1 200", 0), 0u) << final_response.data;
}

TEST(ServerTest, GracefulStopFinishesInFlightRequest) {
  std::atomic<bool> entered{false};
  RunningServer s({}, [&](api::Request&) {
    entered = true;
    std::this_thread::sleep_for(300ms);
    return Text("done");
  });
  HttpClient idle("127.0.0.1", s.port());
  ASSERT_TRUE(idle.Send("GET", "/healthz").ok());  // an idle keep-alive connection
  Result<jiceng::testing::ClientResponse> slow = Internal("not run");
  std::thread client([&] {
    HttpClient c("127.0.0.1", s.port());
    slow = c.Send("GET", "/slow");
  });
  while (!entered) std::this_thread::sleep_for(1ms);
  s.server().Stop();
  client.join();
  ASSERT_TRUE(slow.ok()) << slow.error().message;
  EXPECT_EQ(slow->status, 200);
  EXPECT_EQ(slow->body, "done");
  EXPECT_EQ(slow->Header("connection"), "close");
  s.StopAndJoin();  // Run() returns: the idle connection was closed too
  EXPECT_TRUE(s.stopped());
  // Nothing listens any more.
  HttpClient late("127.0.0.1", s.port());
  EXPECT_FALSE(late.Send("GET", "/healthz").ok());
}

TEST(ServerTest, StopForceClosesAfterGrace) {
  Config c;
  c.limits.shutdown_grace_ms = 100;
  std::atomic<bool> entered{false};
  RunningServer s(c, [&](api::Request&) {
    entered = true;
    std::this_thread::sleep_for(800ms);
    return Text("too late");
  });
  Result<jiceng::testing::ClientResponse> slow = Internal("not run");
  std::thread client([&] {
    HttpClient cl("127.0.0.1", s.port());
    slow = cl.Send("GET", "/slow");
  });
  while (!entered) std::this_thread::sleep_for(1ms);
  s.StopAndJoin();
  client.join();
  EXPECT_FALSE(slow.ok());  // the connection was closed before the answer
}

TEST(ServerTest, ReadTimeoutClosesSlowLoris) {
  Config c;
  c.limits.read_timeout_ms = 300;
  RunningServer s(c, [](api::Request&) { return Text("ok"); });
  auto conn = RawConnection::Connect("127.0.0.1", s.port());
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Write("GET / HTTP/1.1\r\nHost: h\r\n"));
  // Trickle a header line every 50 ms: each byte arrives well within any per-read timeout, but
  // the request as a whole never completes. Stop once the server has hung up.
  for (int i = 0; i < 200 && (*conn)->Write("X-a: b\r\n"); ++i) std::this_thread::sleep_for(50ms);
  auto got = (*conn)->ReadUntilClose(5s);
  EXPECT_TRUE(got.closed);
  EXPECT_EQ(got.data.find("200"), std::string::npos);
}

TEST(ServerTest, IdleKeepAliveConnectionIsClosed) {
  Config c;
  c.limits.idle_timeout_ms = 200;
  RunningServer s(c, [](api::Request&) { return Text("ok"); });
  auto conn = RawConnection::Connect("127.0.0.1", s.port());
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Write("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  auto got = (*conn)->ReadUntilClose(5s);
  EXPECT_TRUE(got.closed);
  EXPECT_EQ(got.data.rfind("HTTP/1.1 200", 0), 0u);
}

TEST(ServerTest, TlsRoundTrip) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() /
                 ("jiceng_tls_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                  "_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string cert = (dir / "cert.pem").string();
  std::string key = (dir / "key.pem").string();
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                    "-subj /CN=localhost -days 1 -keyout " + key + " -out " + cert +
                    " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  Config c;
  c.tls.enabled = true;
  c.tls.cert_file = cert;
  c.tls.key_file = key;
  RunningServer s(c, [](api::Request& req) { return Text(req.scheme + ":" + req.body); });
  HttpClient client("127.0.0.1", s.port(), {.tls = true});
  for (int i = 0; i < 3; ++i) {
    auto res = client.Send("POST", "/fhir", "secret");
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "https:secret");
  }
  EXPECT_EQ(client.connects(), 1);
  // Plain HTTP against the TLS port gets no HTTP answer.
  HttpClient plain("127.0.0.1", s.port(), {.tls = false, .timeout = 2000ms});
  EXPECT_FALSE(plain.Send("GET", "/healthz").ok());
  s.StopAndJoin();
  fs::remove_all(dir);
}

TEST(ServerTest, MissingTlsCertificateFailsStart) {
  Config c;
  c.listen = "127.0.0.1:0";
  c.tls.enabled = true;
  c.tls.cert_file = "/nonexistent/cert.pem";
  c.tls.key_file = "/nonexistent/key.pem";
  Server server(c, [](api::Request&) { return Text("x"); });
  EXPECT_FALSE(server.Start().ok());
}

TEST(ServerTest, ManyConcurrentBlockingHandlers) {
  // Handlers that block (as a group commit does) must not stall each other.
  Config c;
  c.threads = 8;
  RunningServer s(c, [](api::Request&) {
    std::this_thread::sleep_for(20ms);
    return Text("ok");
  });
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&] {
      HttpClient cl("127.0.0.1", s.port());
      for (int j = 0; j < 5; ++j)
        if (auto r = cl.Send("POST", "/fhir", "{}"); r.ok() && r->status == 200) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 30);
  (void)start;
}

// A handler that blocks on "/block" until Release() and answers everything else at once. It
// waits at most 20 s, past the client's 10 s timeout: a request held up behind it fails rather
// than passes late.
class BlockingHandler {
 public:
  Handler handler() {
    return [this](api::Request& req) {
      if (req.path == "/block") {
        std::unique_lock lock(mu_);
        entered_ = true;
        cv_.notify_all();
        cv_.wait_for(lock, 20s, [&] { return released_; });
      }
      return Text("ok");
    };
  }
  // Sends GET /block on a connection of its own, from a thread of its own (joined when dropped).
  static std::jthread BlockOnNewConnection(uint16_t port) {
    return std::jthread([port] {
      HttpClient cl("127.0.0.1", port);
      auto r = cl.Send("GET", "/block", "");
      EXPECT_TRUE(r.ok() && r->status == 200);
    });
  }
  bool WaitEntered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return entered_; });
  }
  // Sends GET /fast on `client`: whether it was answered while /block was still held.
  bool AnsweredWhileBlocked(HttpClient& client) {
    auto r = client.Send("GET", "/fast", "");
    std::lock_guard lock(mu_);
    return r.ok() && r->status == 200 && !released_;
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
};

// A server of `threads` loops whose handler is a BlockingHandler.
struct GatedServer {
  explicit GatedServer(int threads, int shutdown_grace_ms = 0)
      : server(WithThreads(threads, shutdown_grace_ms), gate.handler()) {}
  static Config WithThreads(int threads, int shutdown_grace_ms) {
    Config c;
    c.threads = threads;
    if (shutdown_grace_ms > 0) c.limits.shutdown_grace_ms = shutdown_grace_ms;
    return c;
  }
  BlockingHandler gate;
  RunningServer server;
};

// Each connection lives on one loop (one thread); a new one goes to the loop serving the fewest.
// With two loops, a handler blocked on the first connection's loop must not hold up a second
// connection, nor a third opened after the second closed (its loop is free again).
TEST(ServerTest, ANewConnectionGoesToALoopNotHeldByABlockedHandler) {
  GatedServer g(2);
  auto& [gate, s] = g;
  std::jthread blocked = gate.BlockOnNewConnection(s.port());
  ASSERT_TRUE(gate.WaitEntered());
  {
    HttpClient second("127.0.0.1", s.port());
    EXPECT_TRUE(gate.AnsweredWhileBlocked(second));  // the second loop
  }
  // The second connection has closed: once the server has seen it go, its loop is the least busy.
  std::this_thread::sleep_for(300ms);
  HttpClient third("127.0.0.1", s.port());
  EXPECT_TRUE(gate.AnsweredWhileBlocked(third));
  gate.Release();
}

// A connection that shares its loop hands its handler to a handler thread: with one loop and two
// connections, a handler blocked for the first does not hold up the second.
TEST(ServerTest, AHandlerOfAConnectionSharingItsLoopDoesNotHoldTheLoop) {
  GatedServer g(1);
  auto& [gate, s] = g;
  auto& handed_over = metrics::HttpHandlers().Add({{"mode", "handed_over"}});
  const double handed_over_before = handed_over.Value();
  HttpClient first("127.0.0.1", s.port());
  HttpClient second("127.0.0.1", s.port());
  auto r = first.Send("GET", "/fast", "");
  ASSERT_TRUE(r.ok() && r->status == 200);
  r = second.Send("GET", "/fast", "");  // both connections now live on the one loop
  ASSERT_TRUE(r.ok() && r->status == 200);
  std::jthread blocked([&] {
    auto b = first.Send("GET", "/block", "");
    EXPECT_TRUE(b.ok() && b->status == 200);
  });
  ASSERT_TRUE(gate.WaitEntered());
  EXPECT_TRUE(gate.AnsweredWhileBlocked(second));
  gate.Release();
  blocked.join();
  // /fast on the second connection and /block, at least (/metrics counts every server here).
  EXPECT_GE(handed_over.Value() - handed_over_before, 2);
}

// A loop whose thread is in a long handler (inline: its connection was alone) takes no new
// connection while another loop can: with two loops, one blocked inline and the other serving
// two connections already, a fourth connection still goes to the second loop.
TEST(ServerTest, ALoopInALongHandlerTakesNoNewConnection) {
  GatedServer g(2);
  auto& [gate, s] = g;
  std::jthread blocked = gate.BlockOnNewConnection(s.port());
  ASSERT_TRUE(gate.WaitEntered());
  HttpClient second("127.0.0.1", s.port());
  HttpClient third("127.0.0.1", s.port());
  EXPECT_TRUE(gate.AnsweredWhileBlocked(second));
  EXPECT_TRUE(gate.AnsweredWhileBlocked(third));
  HttpClient fourth("127.0.0.1", s.port());
  EXPECT_TRUE(gate.AnsweredWhileBlocked(fourth));
  gate.Release();
}

// A graceful stop waits for a handler that was handed to a handler thread, whose answer then
// goes out (with Connection: close) before Run() returns.
TEST(ServerTest, AGracefulStopWaitsForAHandedOverHandler) {
  GatedServer g(1, /*shutdown_grace_ms=*/10000);
  auto& [gate, s] = g;
  HttpClient first("127.0.0.1", s.port());
  HttpClient second("127.0.0.1", s.port());
  ASSERT_TRUE(first.Send("GET", "/fast", "").ok());
  ASSERT_TRUE(second.Send("GET", "/fast", "").ok());  // both on the one loop: /block goes over
  std::optional<Result<jiceng::testing::ClientResponse>> answer;
  std::jthread blocked([&] { answer = first.Send("GET", "/block", ""); });
  ASSERT_TRUE(gate.WaitEntered());
  std::jthread stopper([&] { s.StopAndJoin(); });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(s.stopped());
  gate.Release();
  stopper.join();
  blocked.join();
  EXPECT_TRUE(s.stopped());
  ASSERT_TRUE(answer && answer->ok());
  EXPECT_EQ((*answer)->status, 200);
  EXPECT_EQ((*answer)->Header("connection"), "close");
}

// On a shared loop, a read by id (or of one version) runs inline; anything else is handed over.
TEST(ServerTest, OnASharedLoopOnlyReadsByIdRunInline) {
  Config c;
  c.threads = 1;
  RunningServer s(c, [](api::Request&) { return Text("ok"); });
  auto& handed_over = metrics::HttpHandlers().Add({{"mode", "handed_over"}});
  HttpClient first("127.0.0.1", s.port());
  HttpClient second("127.0.0.1", s.port());
  ASSERT_TRUE(first.Send("GET", "/fhir/Patient/a").ok());
  ASSERT_TRUE(second.Send("GET", "/fhir/Patient/a").ok());  // both on the one loop now
  auto handed = [&](std::string_view method, std::string_view target) {
    const double before = handed_over.Value();
    auto r = second.Send(method, target, "");
    EXPECT_TRUE(r.ok() && r->status == 200) << target;
    return handed_over.Value() - before > 0;
  };
  EXPECT_FALSE(handed("GET", "/fhir/Patient/a"));
  EXPECT_FALSE(handed("HEAD", "/fhir/Patient/a/_history/2"));
  EXPECT_FALSE(handed("GET", "/fhir/metadata"));
  EXPECT_TRUE(handed("GET", "/fhir/Patient?name=x"));
  EXPECT_TRUE(handed("GET", "/fhir/Patient/a/_history"));
  EXPECT_TRUE(handed("GET", "/fhir/Patient/$match"));
  EXPECT_TRUE(handed("GET", "/fhir/Patient/a/$everything"));
  EXPECT_TRUE(handed("GET", "/fhir/Patient/a/_history/2/x"));
  EXPECT_TRUE(handed("POST", "/fhir/Patient/a"));
}

}  // namespace
}  // namespace jiceng::http
