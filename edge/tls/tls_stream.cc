#include "edge/tls/tls_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>

#include <array>
#include <cerrno>

namespace doorman::edge {

namespace asio = boost::asio;
using boost::system::error_code;

TlsStream::TlsStream(Socket& socket, const std::shared_ptr<asio::ssl::context>& context) : socket_(socket), context_(context) {
  ssl_ = SSL_new(context->native_handle());
  if (ssl_ && SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle())) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ssl_) {
    SSL_set_accept_state(ssl_);
    // A retried SSL_write may get the same bytes at the same address only;
    // partial writes let one call return after each record.
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One read() for what the socket has, not two per record (header, then
    // body); what is left stays in OpenSSL's buffer (SSL_has_pending), and
    // the buffer is still released once empty.
    SSL_set_read_ahead(ssl_, 1);
  }
  ERR_clear_error();
}

TlsStream::~TlsStream() {
  if (ssl_) SSL_free(ssl_);  // the socket BIO does not close the descriptor
}

TlsStream::Want TlsStream::step(int result, error_code* ec) {
  int sys = errno;
  int err = SSL_get_error(ssl_, result);
  Want want = Want::kDone;
  switch (err) {
    case SSL_ERROR_NONE: *ec = {}; break;
    case SSL_ERROR_WANT_READ: want = Want::kRead; break;
    case SSL_ERROR_WANT_WRITE: want = Want::kWrite; break;
    case SSL_ERROR_ZERO_RETURN: *ec = asio::error::eof; break;  // close_notify
    case SSL_ERROR_SYSCALL:
      // The socket failed (reset), or ended with no error queued: a truncation.
      *ec = sys != 0 ? error_code(sys, boost::system::system_category()) : error_code(asio::ssl::error::stream_truncated);
      break;
    default: {
      unsigned long e = ERR_peek_error();
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        *ec = asio::ssl::error::stream_truncated;
      else
        *ec = error_code(static_cast<int>(e), asio::error::get_ssl_category());
      break;
    }
  }
  // The error queue is per thread, shared by every session on it.
  ERR_clear_error();
  return want;
}

void TlsStream::async_handshake(Handler done) {
  asio::post(socket_.get_executor(), [this, done = std::move(done)]() mutable { handshake_step(std::move(done)); });
}

void TlsStream::handshake_step(Handler done) {
  ERR_clear_error();
  errno = 0;
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    done({});
    return;
  }
  error_code ec;
  Want want = step(r, &ec);
  if (want == Want::kDone) {
    done(ec ? ec : error_code(asio::ssl::error::stream_truncated));
    return;
  }
  socket_.async_wait(want == Want::kRead ? Socket::wait_read : Socket::wait_write,
                     [this, done = std::move(done)](const error_code& wait_ec) mutable {
                       if (wait_ec) return done(wait_ec);
                       handshake_step(std::move(done));
                     });
}

void TlsStream::async_read_some(ReadHandler done) {
  // Bytes already here (the client pipelines): read them on the next turn
  // of the loop rather than after a round through epoll. Else wait first: an
  // idle session makes no SSL_read call, so OpenSSL allocates no read buffer.
  pollfd ready{static_cast<int>(socket_.native_handle()), POLLIN, 0};
  if (SSL_has_pending(ssl_) || ::poll(&ready, 1, 0) == 1) {
    asio::post(socket_.get_executor(), [this, done = std::move(done)]() mutable { read_step(std::move(done)); });
    return;
  }
  socket_.async_wait(Socket::wait_read, [this, done = std::move(done)](const error_code& ec) mutable {
    if (ec) return done(ec, {});
    read_step(std::move(done));
  });
}

void TlsStream::read_step(ReadHandler done) {
  // One buffer per I/O thread, used only inside this call and `done`: the
  // largest record's plaintext fits (2^14 bytes, RFC 8446 §5.1).
  thread_local std::array<char, 16384> buffer;
  ERR_clear_error();
  errno = 0;
  size_t n = 0;
  int r = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n);
  if (r == 1) {
    done({}, std::string_view(buffer.data(), n));
    return;
  }
  error_code ec;
  Want want = step(r, &ec);
  if (want == Want::kDone) {
    done(ec ? ec : error_code(asio::ssl::error::stream_truncated), {});
    return;
  }
  socket_.async_wait(want == Want::kRead ? Socket::wait_read : Socket::wait_write,
                     [this, done = std::move(done)](const error_code& wait_ec) mutable {
                       if (wait_ec) return done(wait_ec, {});
                       read_step(std::move(done));
                     });
}

void TlsStream::async_write(std::string_view bytes, Handler done) {
  writing_ = bytes;
  asio::post(socket_.get_executor(), [this, done = std::move(done)]() mutable { write_step(std::move(done)); });
}

void TlsStream::write_step(Handler done) {
  while (!writing_.empty()) {
    ERR_clear_error();
    errno = 0;
    size_t n = 0;
    int r = SSL_write_ex(ssl_, writing_.data(), writing_.size(), &n);
    if (r == 1) {
      writing_.remove_prefix(n);
      continue;
    }
    error_code ec;
    Want want = step(r, &ec);
    if (want == Want::kDone) {
      writing_ = {};
      done(ec ? ec : error_code(asio::ssl::error::stream_truncated));
      return;
    }
    socket_.async_wait(want == Want::kRead ? Socket::wait_read : Socket::wait_write,
                       [this, done = std::move(done)](const error_code& wait_ec) mutable {
                         if (wait_ec) {
                           writing_ = {};
                           return done(wait_ec);
                         }
                         write_step(std::move(done));
                       });
    return;
  }
  done({});
}

void TlsStream::shutdown() {
  if (!SSL_is_init_finished(ssl_)) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

}  // namespace doorman::edge
