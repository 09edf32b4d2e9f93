// jiceng-loadgen: closed-loop HTTP/1.1 load generator for POST benchmarks (wrk covers GETs).
//
//   jiceng-loadgen --url http://127.0.0.1:8080/fhir/Patient --method POST --body-file p.json
//                  --connections 4 --duration 5 [--body-template] [--header "K: V"]
//   jiceng-loadgen --url http://127.0.0.1:8080/fhir --bundles DIR --connections 4
//
// Each connection is one thread with one blocking keep-alive socket: the next request goes out
// when the previous answer is in, so latency percentiles are honest for a closed loop (no
// coordinated-omission correction: this measures a server under N concurrent clients).
// --body-template replaces every {{n}} in the body with a process-wide request counter.
// --bundles posts every *.json file of DIR once (transaction Bundles) and reports resources/s
// as the sum of `entry` lengths of the Bundles answered 2xx over the wall time.
//
//   jiceng-loadgen --url http://127.0.0.1:8080 --queries FILE --warmup 10 --iterations 100
//
// --queries runs a fixed list of GETs one after the other on ONE keep-alive connection (the
// latency of each query alone, not under load). FILE has one query per line,
// `name<TAB>class<TAB>/origin-form/target?already=percent-encoded` ('#' lines and blank lines
// are skipped). Each query is sent --warmup times, then --iterations times timed (or fewer when
// --query-seconds of timed requests have passed). Prints one tab-separated row per query: name,
// class, status (of every request; "mixed" if they differed), timed requests, p50/p95/p99/max
// ms, the Bundle's total, its match/include/outcome entry counts,
// response bytes, and a note (the Bundle type, or the OperationOutcome's first issue:
// severity, code, diagnostics). A query whose warm-up answers >= 400 is not timed (latencies
// "-"). Exit status: 0 when every request got an HTTP answer, 1 otherwise; judging the
// statuses is the caller's job.
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Target {
  std::string host;
  std::string port;
  std::string path;  // origin-form target
};

std::optional<Target> ParseUrl(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u || u->scheme() != "http") return std::nullopt;
  Target t;
  t.host = u->host();
  t.port = u->has_port() ? std::string(u->port()) : "80";
  t.path = std::string(u->encoded_target());
  if (t.path.empty()) t.path = "/";
  return t;
}

std::optional<std::string> ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Substitute(const std::string& templ, uint64_t n) {
  std::string out;
  std::string num = std::to_string(n);
  size_t pos = 0;
  for (;;) {
    size_t hit = templ.find("{{n}}", pos);
    out.append(templ, pos, hit == std::string::npos ? std::string::npos : hit - pos);
    if (hit == std::string::npos) return out;
    out += num;
    pos = hit + 5;
  }
}

// One worker's tallies; merged after the run.
struct Tally {
  std::vector<double> latencies_ms;
  std::map<int, uint64_t> statuses;
  uint64_t errors = 0;
  uint64_t resources = 0;  // --bundles: entries of Bundles answered 2xx
};

// A blocking keep-alive connection. Stop() (from another thread) unblocks it.
class Connection {
 public:
  Connection(const Target& target) : target_(target), socket_(ioc_) {}

  // Sends req and reads the answer; its body goes to *body when body is not null.
  bool Exchange(bhttp::request<bhttp::string_body>& req, int& status,
                std::string* body = nullptr) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!socket_.is_open() && !Connect()) return false;
      beast::error_code ec;
      bhttp::write(socket_, req, ec);
      if (!ec) {
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(std::numeric_limits<uint64_t>::max());
        bhttp::read(socket_, buffer_, parser, ec);
        if (!ec) {
          status = static_cast<int>(parser.get().result_int());
          if (body) *body = std::move(parser.get().body());
          if (!parser.get().keep_alive()) Close();
          return true;
        }
      }
      Close();
      // A server may close an idle keep-alive connection just as we reuse it: retry once on a
      // fresh connection, but never after the run was stopped.
      if (stopped_) return false;
    }
    return false;
  }

  void Stop() {
    stopped_ = true;
    std::lock_guard lock(mu_);
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  bool Connect() {
    if (stopped_) return false;
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(target_.host, target_.port, ec);
    if (ec) return false;
    asio::connect(socket_, endpoints, ec);
    if (ec) return false;
    socket_.set_option(tcp::no_delay(true), ec);
    std::lock_guard lock(mu_);
    fd_ = socket_.native_handle();
    return true;
  }
  void Close() {
    std::lock_guard lock(mu_);
    beast::error_code ec;
    socket_.close(ec);
    fd_ = -1;
    buffer_.clear();
  }

  const Target& target_;
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::mutex mu_;
  int fd_ = -1;
  std::atomic<bool> stopped_{false};
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

// Number of entries of a Bundle (0 when the file is not a Bundle with an entry array).
uint64_t CountEntries(const std::string& text) {
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  if (ec || !value.is_object()) return 0;
  const auto* entry = value.as_object().if_contains("entry");
  return entry && entry->is_array() ? entry->as_array().size() : 0;
}

// What one answer of a --queries line says, beyond its status.
struct Shape {
  std::string total = "-";  // Bundle.total when present
  uint64_t match = 0, include = 0, outcome = 0;
  std::string note;  // Bundle type, or "severity code: diagnostics" of the first issue
};

std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

std::string IssueNote(const boost::json::object& outcome) {
  const auto* issues = outcome.if_contains("issue");
  if (!issues || !issues->is_array() || issues->as_array().empty()) return "OperationOutcome";
  const auto& first = issues->as_array().front();
  if (!first.is_object()) return "OperationOutcome";
  auto field = [&](const char* k) -> std::string {
    const auto* v = first.as_object().if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : "";
  };
  return OneLine(field("severity") + " " + field("code") + ": " + field("diagnostics"));
}

Shape DescribeAnswer(const std::string& body) {
  Shape shape;
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec || !value.is_object()) {
    shape.note = "not JSON";
    return shape;
  }
  const auto& obj = value.as_object();
  const auto* rtype = obj.if_contains("resourceType");
  std::string type = rtype && rtype->is_string() ? std::string(rtype->as_string()) : "";
  if (type == "OperationOutcome") {
    shape.note = IssueNote(obj);
    return shape;
  }
  if (type != "Bundle") {
    shape.note = "not a Bundle: " + type;
    return shape;
  }
  const auto* btype = obj.if_contains("type");
  shape.note = btype && btype->is_string() ? std::string(btype->as_string()) : "Bundle";
  if (const auto* total = obj.if_contains("total"); total && total->is_number())
    shape.total = boost::json::serialize(*total);
  const auto* entries = obj.if_contains("entry");
  if (!entries || !entries->is_array()) return shape;
  std::string first_outcome;
  for (const auto& e : entries->as_array()) {
    if (!e.is_object()) continue;
    std::string mode = "match";
    if (const auto* search = e.as_object().if_contains("search"); search && search->is_object())
      if (const auto* m = search->as_object().if_contains("mode"); m && m->is_string())
        mode = std::string(m->as_string());
    if (mode == "include") {
      ++shape.include;
    } else if (mode == "outcome") {
      if (++shape.outcome == 1)
        if (const auto* r = e.as_object().if_contains("resource"); r && r->is_object())
          first_outcome = IssueNote(r->as_object());
    } else {
      ++shape.match;
    }
  }
  if (!first_outcome.empty()) shape.note += "; outcome entry: " + first_outcome;
  return shape;
}

// --queries: every line of the file, one after the other, on one connection. Returns the exit
// status.
int RunQueries(const Target& base, const std::string& file,
               const std::vector<std::pair<std::string, std::string>>& headers, int warmup,
               int iterations, double query_seconds) {
  std::ifstream in(file);
  if (!in) {
    std::cerr << "jiceng-loadgen: cannot read " << file << "\n";
    return 2;
  }
  struct Query {
    std::string name, cls, target;
  };
  std::vector<Query> queries;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty() || line[0] == '#') continue;
    size_t t1 = line.find('\t'), t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string::npos || line.compare(t2 + 1, 1, "/") != 0) {
      std::cerr << "jiceng-loadgen: " << file << ":" << line_no
                << ": want name<TAB>class<TAB>/target\n";
      return 2;
    }
    queries.push_back({line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), line.substr(t2 + 1)});
  }
  Connection conn(base);
  auto host_header = base.host + ":" + base.port;
  bool all_answered = true;
  std::printf("name\tclass\tstatus\tn\tp50_ms\tp95_ms\tp99_ms\tmax_ms\ttotal\tmatch\tinclude\t"
              "outcome\tbytes\tnote\n");
  for (const auto& q : queries) {
    bhttp::request<bhttp::string_body> req;
    req.method(bhttp::verb::get);
    req.target(q.target);
    req.version(11);
    req.set(bhttp::field::host, host_header);
    for (const auto& [k, v] : headers) req.set(k, v);
    std::vector<double> latencies;
    std::map<int, uint64_t> statuses;
    std::string body, first_body;
    int status = 0, first_status = 0;
    uint64_t errors = 0;
    Clock::time_point timed_start;
    for (int i = 0; i < warmup + iterations; ++i) {
      bool timed = i >= warmup;
      if (timed && first_status >= 400) break;  // an error answer is not worth timing
      auto start = Clock::now();
      if (i == warmup) timed_start = start;
      if (timed && query_seconds > 0 && !latencies.empty() &&
          std::chrono::duration<double>(start - timed_start).count() >= query_seconds)
        break;
      if (!conn.Exchange(req, status, &body)) {
        ++errors;
        continue;
      }
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      if (first_status == 0) {
        first_status = status;
        first_body = body;
      }
      ++statuses[status];
      if (timed) latencies.push_back(ms);
    }
    all_answered &= errors == 0;
    std::string status_text =
        statuses.empty() ? "no-answer" : statuses.size() == 1 ? std::to_string(first_status) : "mixed";
    if (statuses.size() > 1)
      for (auto [s, n] : statuses) status_text += " " + std::to_string(s) + "x" + std::to_string(n);
    Shape shape = first_body.empty() && statuses.empty() ? Shape{} : DescribeAnswer(first_body);
    if (errors) shape.note += " (" + std::to_string(errors) + " requests without answer)";
    std::sort(latencies.begin(), latencies.end());
    auto ms = [&](double p) {
      char buf[32];
      if (latencies.empty()) return std::string("-");
      std::snprintf(buf, sizeof buf, "%.2f", Percentile(latencies, p));
      return std::string(buf);
    };
    std::printf("%s\t%s\t%s\t%zu\t%s\t%s\t%s\t%s\t%s\t%llu\t%llu\t%llu\t%zu\t%s\n",
                q.name.c_str(), q.cls.c_str(), status_text.c_str(), latencies.size(), ms(50).c_str(),
                ms(95).c_str(), ms(99).c_str(), ms(100).c_str(), shape.total.c_str(),
                static_cast<unsigned long long>(shape.match),
                static_cast<unsigned long long>(shape.include),
                static_cast<unsigned long long>(shape.outcome), first_body.size(),
                shape.note.c_str());
    std::fflush(stdout);
  }
  return all_answered ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"jiceng-loadgen: closed-loop HTTP/1.1 POST/GET load generator"};
  std::string url, method = "GET", body_file, bundles_dir;
  int repeat = 1;
  std::vector<std::string> header_args;
  int connections = 4;
  double duration_s = 5;
  bool body_template = false;
  app.add_option("--url", url, "http://host:port/path")->required();
  app.add_option("--method", method);
  app.add_option("--body-file", body_file);
  app.add_flag("--body-template", body_template, "Replace {{n}} in the body with a counter");
  app.add_option("--header", header_args, "Extra header 'Name: value' (repeatable)");
  app.add_option("--connections,-c", connections)->check(CLI::Range(1, 4096));
  app.add_option("--duration,-d", duration_s, "Seconds (ignored with --bundles)");
  app.add_option("--bundles", bundles_dir, "POST every *.json file in DIR (--repeat times)");
  app.add_option("--repeat", repeat, "With --bundles: post the whole directory this many times");
  std::string queries_file;
  int warmup = 10, iterations = 100;
  double query_seconds = 0;
  app.add_option("--queries", queries_file,
                 "GET each line 'name<TAB>class<TAB>/target' of FILE in turn on one connection "
                 "(--url gives host and port) and print a TSV row of latencies per query");
  app.add_option("--warmup", warmup, "With --queries: untimed requests per query first")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--iterations", iterations, "With --queries: timed requests per query")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--query-seconds", query_seconds,
                 "With --queries: stop timing a query after this many seconds (0: no limit)");
  CLI11_PARSE(app, argc, argv);

  auto target = ParseUrl(url);
  if (!target) {
    std::cerr << "jiceng-loadgen: --url must be http://host[:port]/path\n";
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> headers;
  bool has_content_type = false;
  for (const auto& h : header_args) {
    size_t colon = h.find(':');
    if (colon == std::string::npos) {
      std::cerr << "jiceng-loadgen: bad --header '" << h << "'\n";
      return 2;
    }
    std::string name = h.substr(0, colon), value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    has_content_type |= beast::iequals(name, "content-type");
    headers.emplace_back(name, value);
  }
  if (!queries_file.empty())
    return RunQueries(*target, queries_file, headers, warmup, iterations, query_seconds);
  if (!has_content_type) headers.emplace_back("Content-Type", "application/fhir+json");

  std::string body;
  if (!body_file.empty()) {
    auto text = ReadFile(body_file);
    if (!text) {
      std::cerr << "jiceng-loadgen: cannot read " << body_file << "\n";
      return 2;
    }
    body = std::move(*text);
  }

  // --bundles: the file list and each Bundle's entry count, counted before the clock starts.
  std::vector<std::filesystem::path> files;
  std::vector<uint64_t> entries;
  std::vector<std::string> bodies;  // read before the clock starts
  if (!bundles_dir.empty()) {
    method = "POST";
    std::error_code ec;
    for (const auto& de : std::filesystem::directory_iterator(bundles_dir, ec))
      if (de.is_regular_file() && de.path().extension() == ".json") files.push_back(de.path());
    if (ec || files.empty()) {
      std::cerr << "jiceng-loadgen: no *.json files in " << bundles_dir << "\n";
      return 2;
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      bodies.push_back(ReadFile(f).value_or(""));
      entries.push_back(CountEntries(bodies.back()));
    }
  }

  std::vector<Tally> tallies(connections);
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < connections; ++i) conns.push_back(std::make_unique<Connection>(*target));
  std::atomic<uint64_t> counter{0};
  std::atomic<size_t> next_file{0};
  std::atomic<bool> stop{false};
  auto host_header = target->host + ":" + target->port;

  auto worker = [&](int index) {
    Tally& tally = tallies[index];
    Connection& conn = *conns[index];
    while (!stop.load(std::memory_order_relaxed)) {
      bhttp::request<bhttp::string_body> req;
      req.method_string(method);
      req.target(target->path);
      req.version(11);
      req.set(bhttp::field::host, host_header);
      for (const auto& [k, v] : headers) req.set(k, v);
      uint64_t bundle_entries = 0;
      if (!files.empty()) {
        size_t n = next_file.fetch_add(1);
        if (n >= files.size() * static_cast<size_t>(std::max(1, repeat))) return;
        size_t i = n % files.size();
        req.body() = bodies[i];
        bundle_entries = entries[i];
      } else if (body_template) {
        req.body() = Substitute(body, counter.fetch_add(1));
      } else {
        req.body() = body;
      }
      if (!req.body().empty() || method != "GET") req.prepare_payload();
      auto start = Clock::now();
      int status = 0;
      if (!conn.Exchange(req, status)) {
        if (!stop) ++tally.errors;
        continue;
      }
      // A request answered after the clock stopped still counts in --bundles mode (the run
      // ends when every file is done), never in timed mode.
      if (stop && files.empty()) return;
      tally.latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      ++tally.statuses[status];
      if (status >= 200 && status < 300) tally.resources += bundle_entries;
    }
  };

  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < connections; ++i) threads.emplace_back(worker, i);
  if (files.empty()) {
    std::this_thread::sleep_for(std::chrono::duration<double>(duration_s));
    stop = true;
    for (auto& c : conns) c->Stop();
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  Tally all;
  for (auto& t : tallies) {
    all.latencies_ms.insert(all.latencies_ms.end(), t.latencies_ms.begin(), t.latencies_ms.end());
    for (auto [s, n] : t.statuses) all.statuses[s] += n;
    all.errors += t.errors;
    all.resources += t.resources;
  }
  std::sort(all.latencies_ms.begin(), all.latencies_ms.end());
  size_t done = all.latencies_ms.size();
  std::printf("%s %s  connections=%d  elapsed=%.2fs\n", method.c_str(), url.c_str(), connections,
              elapsed);
  std::printf("requests: %zu  (%.1f req/s)  errors: %llu\n", done,
              static_cast<double>(done) / elapsed, static_cast<unsigned long long>(all.errors));
  std::printf("latency ms: p50 %.3f  p95 %.3f  p99 %.3f  max %.3f\n",
              Percentile(all.latencies_ms, 50), Percentile(all.latencies_ms, 95),
              Percentile(all.latencies_ms, 99), done ? all.latencies_ms.back() : 0.0);
  std::printf("status:");
  for (auto [s, n] : all.statuses) std::printf("  %d=%llu", s, static_cast<unsigned long long>(n));
  std::printf("\n");
  if (!files.empty()) {
    std::printf("bundles: %zu files  resources (2xx): %llu  (%.1f resources/s)\n", files.size(),
                static_cast<unsigned long long>(all.resources),
                static_cast<double>(all.resources) / elapsed);
  }
  bool all_ok = all.errors == 0;
  for (auto [s, n] : all.statuses) all_ok &= s < 400;
  return all_ok ? 0 : 1;
}
