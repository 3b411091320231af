// The server side of one STARTTLS session (RFC 3207), reactor style.
//
// OpenSSL reads and writes the connected socket's descriptor itself
// (SSL_set_fd on the non-blocking native handle). When SSL_do_handshake,
// SSL_read or SSL_write wants the socket readable or writable, the stream
// waits for that with socket.async_wait and tries again; nothing is copied
// through a BIO pair or kept in buffers of its own. asio::ssl::stream, which
// this replaces, holds two 17 KB engine buffers and a BIO pair per stream
// for the life of the session; here an idle session holds only the SSL
// object: with SSL_MODE_RELEASE_BUFFERS (set on the context, see
// tls_context.cc) OpenSSL frees its record buffers whenever they are empty,
// and a read decrypts into one buffer per I/O thread (`read_some`), so the
// bytes are valid only during the callback. bench/RESULTS.md has the
// measurements.
//
// Sees untrusted bytes (the client's records), but only through OpenSSL. One
// read and one write may be outstanding at a time, on the socket's executor
// (one thread); every handler runs from that executor, never inside the call
// that started it. The owner keeps the stream alive until its handlers have
// run (they hold the owner) and closes the socket to abort them.
#pragma once

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <functional>
#include <memory>
#include <string_view>

namespace doorman::edge {

class TlsStream {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using Handler = std::function<void(const boost::system::error_code&)>;
  using ReadHandler = std::function<void(const boost::system::error_code&, std::string_view)>;

  // `socket` must be connected and non-blocking and outlive the stream.
  TlsStream(Socket& socket, const std::shared_ptr<boost::asio::ssl::context>& context);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // False when OpenSSL could not make the SSL object (out of memory).
  bool ok() const { return ssl_ != nullptr; }
  SSL* native_handle() { return ssl_; }

  void async_handshake(Handler done);
  // Decrypts the next record's bytes; a clean close_notify is asio::error::eof,
  // an end without one ssl::error::stream_truncated (as asio::ssl::stream).
  void async_read_some(ReadHandler done);
  // Writes all of `bytes`, which must stay valid and unchanged until `done`.
  void async_write(std::string_view bytes, Handler done);
  // Sends close_notify if the socket takes it now; does not wait for the
  // client's (the socket is closed right after).
  void shutdown();

 private:
  enum class Want { kDone, kRead, kWrite };
  // One attempt of an SSL call: what to wait for next, or kDone with `ec` set.
  Want step(int result, boost::system::error_code* ec);
  void wait(Want want, std::function<void()> retry, Handler fail);
  void handshake_step(Handler done);
  void read_step(ReadHandler done);
  void write_step(Handler done);

  Socket& socket_;
  // The context this session's handshake used, also after a reload.
  std::shared_ptr<boost::asio::ssl::context> context_;
  SSL* ssl_ = nullptr;
  std::string_view writing_;  // the rest of the current write
};

}  // namespace doorman::edge
