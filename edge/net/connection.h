// One SMTP client connection: the thin I/O shell around a Session.
// Lives on exactly one io_context thread; see server.h for the limits.
#pragma once

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <functional>
#include <string_view>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "edge/directory_client.h"
#include "edge/net/relay.h"
#include "edge/session/session.h"
#include "edge/tls/tls_stream.h"

namespace doorman::edge {

class Server;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::ip::tcp::socket socket, Server& server, size_t context_index, std::string id);

  // Starts the session; with `refuse`, sends 421 4.7.0 and closes instead.
  void start(bool refuse);
  // Graceful stop: 421 4.3.2 now if idle, else after the transaction.
  void shutdown();
  // Closes the socket now (after the grace period).
  void force_close();

 private:
  void read_proxy_header();
  void greet();  // per-address limit, greet pause, then the session's greeting
  void perform(Actions a);
  void maybe_read();
  void release_idle_memory();
  Relay& relay();
  boost::asio::steady_timer& delay_timer();
  template <typename Handler>
  void delay_wait(Handler handler);
  void on_read(const boost::system::error_code& ec, std::string_view bytes);
  // Waits until the socket is readable, then reads into a per-thread buffer
  // and calls `done` synchronously: an idle session holds no read buffer.
  void read_some(std::function<void(const boost::system::error_code&, std::string_view)> done);
  void queue_write(const std::string& bytes);
  void do_write();
  void start_check(const CheckRequest& request);
  void on_check(CheckResult result);
  void on_relay(RelayResult result);
  void log_transaction(const TransactionSummary& t);
  void arm_idle_timer();
  void close(const char* reason);
  void start_tls();  // the handshake, once "220 Ready to start TLS" is written

  static constexpr size_t kMaxPendingOutput = 64 * 1024;

  boost::asio::ip::tcp::socket socket_;
  Server& server_;
  size_t context_index_;
  std::string id_;
  std::string client_ip_;
  std::string ip_key_;  // what max-sessions-per-ip counts (IPv6: by prefix)
  Session session_;
  std::unique_ptr<Relay> relay_;  // made at the first relayed command (most sessions relay nothing)
  // After STARTTLS: the TLS stream over socket_ (it keeps the context its
  // handshake used). Like plaintext sessions, it reads into a per-thread
  // buffer and holds none while idle.
  std::unique_ptr<TlsStream> tls_;
  boost::asio::steady_timer idle_timer_;
  // Greet pause, reply delays, TLS handshake timeout: made when first needed,
  // given back while the session idles with no wait on it.
  std::unique_ptr<boost::asio::steady_timer> delay_timer_;
  int delay_waits_ = 0;  // async_waits on delay_timer_ whose handler has not run yet

  std::string out_;      // replies waiting to be written
  std::string writing_;  // replies being written
  std::string delayed_;  // replies held back by the error delay
  std::string proxy_buf_;  // bytes read while waiting for the PROXY header
  bool ip_counted_ = false;
  bool pregreet_ = false;  // within the greet pause
  bool reading_ = false;
  bool delaying_ = false;
  bool close_after_write_ = false;
  bool tls_after_write_ = false;  // STARTTLS accepted: handshake once out_ is written
  bool closed_ = false;
  bool timed_out_ = false;  // the idle timeout fired: the next one closes hard
  // How the session ended, once known (the first cause wins); unset at the
  // end: closed by us for another reason (server_closed).
  std::optional<SessionEnd> end_reason_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point check_started_;
  std::chrono::steady_clock::time_point tx_started_;
  std::optional<std::chrono::steady_clock::time_point> end_started_;  // final dot sent
};

}  // namespace doorman::edge
