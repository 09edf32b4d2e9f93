#include "support/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <variant>

namespace jiceng::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::optional<std::string> ClientResponse::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return std::nullopt;
}

namespace {

// Drives one async operation to completion on a private io_context, so that Beast's stream
// timeouts apply (they do not to synchronous calls).
template <class Start>
beast::error_code RunOp(asio::io_context& ioc, Start start) {
  beast::error_code result = asio::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

Error IoError(std::string_view what, const beast::error_code& ec) {
  return Error(ErrorCode::kUnavailable, std::string(what) + ": " + ec.message());
}

}  // namespace

class HttpClient::Impl {
 public:
  Impl(std::string host, uint16_t port, Options options)
      : host_(std::move(host)), port_(port), options_(options), ssl_ctx_(ssl::context::tls_client) {
    ssl_ctx_.set_verify_mode(ssl::verify_none);
  }

  Result<ClientResponse> Send(std::string_view method, std::string_view target,
                              std::string_view body, const Headers& headers) {
    if (std::holds_alternative<std::monostate>(stream_)) JC_RETURN_IF_ERROR(Connect());
    bhttp::request<bhttp::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(bhttp::field::host, host_ + ":" + std::to_string(port_));
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      req.body() = std::string(body);
      req.prepare_payload();
    }
    auto result = std::visit(
        [&](auto& stream) -> Result<ClientResponse> {
          if constexpr (std::is_same_v<std::decay_t<decltype(stream)>, std::monostate>) {
            return Internal("not connected");
          } else {
            return Exchange(*stream, req, method == "HEAD");
          }
        },
        stream_);
    if (!result.ok()) Close();
    return result;
  }

  void Close() {
    stream_ = std::monostate{};
    buffer_.clear();
  }
  bool connected() const { return !std::holds_alternative<std::monostate>(stream_); }
  int connects() const { return connects_; }

 private:
  using Plain = beast::tcp_stream;
  using Tls = beast::ssl_stream<beast::tcp_stream>;

  Status Connect() {
    Close();
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
    if (ec) return IoError("resolve", ec);
    auto tcp_stream = std::make_unique<Plain>(ioc_);
    tcp_stream->expires_after(options_.timeout);
    ec = RunOp(ioc_, [&](auto handler) { tcp_stream->async_connect(endpoints, handler); });
    if (ec) return IoError("connect", ec);
    tcp_stream->socket().set_option(tcp::no_delay(true), ec);
    ++connects_;
    if (!options_.tls) {
      stream_ = std::move(tcp_stream);
      return Status::Ok();
    }
    auto tls = std::make_unique<Tls>(std::move(*tcp_stream), ssl_ctx_);
    SSL_set_tlsext_host_name(tls->native_handle(), host_.c_str());
    beast::get_lowest_layer(*tls).expires_after(options_.timeout);
    ec = RunOp(ioc_, [&](auto handler) { tls->async_handshake(ssl::stream_base::client, handler); });
    if (ec) return IoError("tls handshake", ec);
    stream_ = std::move(tls);
    return Status::Ok();
  }

  template <class Stream>
  Result<ClientResponse> Exchange(Stream& stream, bhttp::request<bhttp::string_body>& req,
                                  bool head) {
    beast::get_lowest_layer(stream).expires_after(options_.timeout);
    auto ec = RunOp(ioc_, [&](auto handler) { bhttp::async_write(stream, req, handler); });
    if (ec) return IoError("write", ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    parser.skip(head);
    beast::get_lowest_layer(stream).expires_after(options_.timeout);
    ec = RunOp(ioc_, [&](auto handler) { bhttp::async_read(stream, buffer_, parser, handler); });
    if (ec) return IoError("read", ec);
    auto& res = parser.get();
    ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) Close();
    return out;
  }

  std::string host_;
  uint16_t port_;
  Options options_;
  asio::io_context ioc_;
  ssl::context ssl_ctx_;
  std::variant<std::monostate, std::unique_ptr<Plain>, std::unique_ptr<Tls>> stream_;
  beast::flat_buffer buffer_;
  int connects_ = 0;
};

HttpClient::HttpClient(std::string host, uint16_t port) : HttpClient(std::move(host), port, {}) {}
HttpClient::HttpClient(std::string host, uint16_t port, Options options)
    : impl_(std::make_unique<Impl>(std::move(host), port, options)) {}
HttpClient::~HttpClient() = default;
Result<ClientResponse> HttpClient::Send(std::string_view method, std::string_view target,
                                        std::string_view body, const Headers& headers) {
  return impl_->Send(method, target, body, headers);
}
void HttpClient::Close() { impl_->Close(); }
bool HttpClient::connected() const { return impl_->connected(); }
int HttpClient::connects() const { return impl_->connects(); }

class RawConnection::Impl {
 public:
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  bool closed = false;
};

RawConnection::RawConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RawConnection::~RawConnection() = default;

Result<std::unique_ptr<RawConnection>> RawConnection::Connect(const std::string& host,
                                                              uint16_t port) {
  auto impl = std::make_unique<Impl>();
  tcp::resolver resolver(impl->ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return IoError("resolve", ec);
  impl->stream.expires_after(std::chrono::seconds(10));
  ec = RunOp(impl->ioc, [&](auto handler) { impl->stream.async_connect(endpoints, handler); });
  if (ec) return IoError("connect", ec);
  return std::unique_ptr<RawConnection>(new RawConnection(std::move(impl)));
}

bool RawConnection::Write(std::string_view bytes) {
  if (impl_->closed) return false;
  beast::error_code ec;
  asio::write(impl_->stream.socket(), asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec) impl_->closed = true;
  return !ec;
}

RawConnection::ReadResult RawConnection::ReadUntil(std::string_view needle,
                                                   std::chrono::milliseconds timeout) {
  ReadResult out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char chunk[4096];
  while (!impl_->closed && (needle.empty() || out.data.find(needle) == std::string::npos)) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) break;
    impl_->stream.expires_after(left);
    size_t got = 0;
    auto ec = RunOp(impl_->ioc, [&](auto handler) {
      impl_->stream.async_read_some(asio::buffer(chunk), [&got, handler](beast::error_code e,
                                                                         size_t n) mutable {
        got = n;
        handler(e);
      });
    });
    out.data.append(chunk, got);
    if (ec == beast::error::timeout) {
      // The timeout closes a tcp_stream; the connection is unusable after it anyway.
      break;
    }
    if (ec) impl_->closed = true;
  }
  out.closed = impl_->closed;
  return out;
}

RawConnection::ReadResult RawConnection::ReadUntilClose(std::chrono::milliseconds timeout) {
  return ReadUntil({}, timeout);
}

}  // namespace jiceng::testing
