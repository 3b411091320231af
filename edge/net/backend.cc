#include "edge/net/backend.h"

#include "common/log.h"
#include "edge/metrics.h"
#include "smtp/command.h"

namespace doorman::edge {

namespace asio = boost::asio;
using boost::system::error_code;

BackendConnection::BackendConnection(asio::any_io_executor executor, const BackendTimeouts& timeouts,
                                     std::string helo_name, const BackendTls* tls)
    : socket_(executor), tls_(tls), resolver_(executor), timer_(executor), timeouts_(timeouts), helo_name_(std::move(helo_name)) {}

void BackendConnection::close() {
  broken_ = true;
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  resolver_.cancel();
  timer_.cancel();
}

void BackendConnection::fail(const RepliesDone& done) {
  close();
  done(false, {});
}

void BackendConnection::open(const std::string& host_port, Done done) {
  key_ = host_port;
  size_t colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon);
  std::string port = colon == std::string::npos ? "25" : host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  host_ = host;
  auto self = shared_from_this();
  timer_.expires_after(timeouts_.connect);
  timer_.async_wait([self](const error_code& ec) {
    if (!ec) self->close();  // connect (or resolve) took too long
  });
  resolver_.async_resolve(host, port, [self, done](const error_code& ec, asio::ip::tcp::resolver::results_type r) {
    if (ec || self->broken_) {
      self->close();
      done(false);
      return;
    }
    asio::async_connect(self->socket_, r, [self, done](const error_code& ec2, const asio::ip::tcp::endpoint&) {
      if (ec2 || self->broken_) {
        self->close();
        done(false);
        return;
      }
      error_code ignored;  // a peer that reset already fails at the greeting
      self->socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
      // Greeting, then EHLO (HELO if EHLO is refused).
      self->send("", 1, self->timeouts_.greeting, [self, done](bool ok, std::vector<smtp::Reply> greeting) {
        if (!ok || greeting[0].code != 220) {
          self->close();
          done(false);
          return;
        }
        self->send("EHLO " + self->helo_name_ + "\r\n", 1, self->timeouts_.command,
                   [self, done](bool ok2, std::vector<smtp::Reply> ehlo) {
                     if (!ok2) {
                       done(false);
                       return;
                     }
                     if (ehlo[0].code == 250) {
                       self->parse_extensions();
                       self->after_ehlo(done);
                       return;
                     }
                     if (ehlo[0].code < 500) {
                       self->close();
                       done(false);
                       return;
                     }
                     self->send("HELO " + self->helo_name_ + "\r\n", 1, self->timeouts_.command,
                                [self, done](bool ok3, std::vector<smtp::Reply> helo) {
                                  // HELO: no extensions, so no STARTTLS either.
                                  bool required = self->tls_ && self->tls_->settings.mode ==
                                                                    TlsClientSettings::Mode::kRequired;
                                  self->open_ = ok3 && helo[0].code == 250 && !required;
                                  if (!self->open_) self->close();
                                  done(self->open_);
                                });
                   });
      });
    });
  });
}

void BackendConnection::after_ehlo(Done done) {
  using Mode = TlsClientSettings::Mode;
  Mode mode = tls_ && tls_->context ? tls_->settings.mode : Mode::kNone;
  if (mode == Mode::kNone || (!starttls_ && mode == Mode::kOpportunistic)) {
    open_ = true;
    done(true);
    return;
  }
  if (!starttls_) {
    log::warn("backend_tls_unavailable").kv("session", session_).kv("backend", key_).kv("error", "STARTTLS not offered");
    if (auto* m = edge_metrics()) m->backend_tls_failed.inc();
    close();
    done(false);
    return;
  }
  auto self = shared_from_this();
  send("STARTTLS\r\n", 1, timeouts_.command, [self, done, mode](bool ok, std::vector<smtp::Reply> r) {
    if (!ok) {
      done(false);
      return;
    }
    if (r[0].code != 220) {
      log::warn("backend_tls_unavailable").kv("session", self->session_).kv("backend", self->key_).kv("code", r[0].code);
      if (auto* m = edge_metrics()) m->backend_tls_failed.inc();
      if (mode == Mode::kRequired) {
        self->close();
        done(false);
      } else {
        self->open_ = true;  // opportunistic: carry on in plaintext
        done(true);
      }
      return;
    }
    self->handshake(done);
  });
}

void BackendConnection::handshake(Done done) {
  if (!inbuf_.empty()) {
    // Bytes after the 220 arrived in plaintext: never read them as TLS-era replies.
    close();
    done(false);
    return;
  }
  tls_stream_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls_->context);
  prepare_client_ssl(tls_stream_->native_handle(), tls_->settings, host_);
  auto self = shared_from_this();
  timer_.expires_after(timeouts_.command);
  timer_.async_wait([self](const error_code& ec) {
    if (!ec) self->close();
  });
  tls_stream_->async_handshake(asio::ssl::stream_base::client, [self, done](const error_code& ec) {
    self->timer_.cancel();
    if (ec || self->broken_) {
      log::warn("backend_tls_failed")
          .kv("session", self->session_)
          .kv("backend", self->key_)
          .kv("error", self->broken_ ? std::string("timeout") : tls_error_text(self->tls_stream_->native_handle()));
      if (auto* m = edge_metrics()) m->backend_tls_failed.inc();
      self->close();
      done(false);
      return;
    }
    if (auto* m = edge_metrics()) m->backend_tls_ok.inc();
    self->ehlo_again(done);
  });
}

void BackendConnection::ehlo_again(Done done) {
  pipelining_ = size_ = eightbit_ = starttls_ = false;  // RFC 3207: forget the plaintext EHLO
  auto self = shared_from_this();
  send("EHLO " + helo_name_ + "\r\n", 1, timeouts_.command, [self, done](bool ok, std::vector<smtp::Reply> ehlo) {
    if (!ok || ehlo[0].code != 250) {
      self->close();
      done(false);
      return;
    }
    self->parse_extensions();
    self->open_ = true;
    done(true);
  });
}

void BackendConnection::send(std::string bytes, size_t replies, std::chrono::milliseconds timeout, RepliesDone done) {
  if (broken_) {
    done(false, {});
    return;
  }
  auto self = shared_from_this();
  timer_.expires_after(timeout);
  timer_.async_wait([self](const error_code& ec) {
    if (!ec) self->close();  // the step timed out: pending I/O fails
  });
  auto after_write = [self, replies, done](const error_code& ec, size_t) {
    if (ec || self->broken_) {
      self->fail(done);
      return;
    }
    if (replies == 0) {
      self->timer_.cancel();
      done(true, {});
      return;
    }
    self->read_replies(replies, {}, done);
  };
  if (bytes.empty()) {
    after_write(error_code(), 0);
    return;
  }
  outbuf_ = std::move(bytes);
  if (tls_stream_) asio::async_write(*tls_stream_, asio::buffer(outbuf_), after_write);
  else asio::async_write(socket_, asio::buffer(outbuf_), after_write);
}

void BackendConnection::read_replies(size_t remaining, std::vector<smtp::Reply> acc, RepliesDone done) {
  // Parse what is already buffered first (pipelined replies arrive together).
  while (remaining > 0 && !inbuf_.empty()) {
    size_t used = parser_.feed(inbuf_);
    inbuf_.erase(0, used);
    if (parser_.error()) {
      fail(done);
      return;
    }
    if (!parser_.has_reply()) break;
    smtp::ParsedReply p = parser_.take();
    last_lines_ = p.lines;
    acc.push_back(p.reply());
    --remaining;
  }
  if (remaining == 0) {
    timer_.cancel();
    done(true, std::move(acc));
    return;
  }
  auto self = shared_from_this();
  auto buf = std::make_shared<std::array<char, 4096>>();
  auto on_read = [self, buf, remaining, acc = std::move(acc), done](const error_code& ec, size_t n) mutable {
    if (ec || self->broken_) {
      self->fail(done);
      return;
    }
    self->inbuf_.append(buf->data(), n);
    self->read_replies(remaining, std::move(acc), std::move(done));
  };
  if (tls_stream_) tls_stream_->async_read_some(asio::buffer(*buf), std::move(on_read));
  else socket_.async_read_some(asio::buffer(*buf), std::move(on_read));
}

void BackendConnection::parse_extensions() {
  for (size_t i = 1; i < last_lines_.size(); ++i) {
    std::string_view ext = last_lines_[i];
    std::string_view word = ext.substr(0, ext.find(' '));
    if (smtp::iequals(word, "PIPELINING")) pipelining_ = true;
    if (smtp::iequals(word, "SIZE")) size_ = true;
    if (smtp::iequals(word, "8BITMIME")) eightbit_ = true;
    if (smtp::iequals(word, "STARTTLS")) starttls_ = true;
  }
}

void BackendConnection::transact(std::vector<std::string> lines, std::chrono::milliseconds timeout, RepliesDone done) {
  if (pipelining_ || lines.size() == 1) {
    std::string all;
    for (const auto& l : lines) all += l + "\r\n";
    size_t n = lines.size();
    send(std::move(all), n, timeout, std::move(done));
    return;
  }
  sequential(std::move(lines), 0, timeout, {}, std::move(done));
}

void BackendConnection::sequential(std::vector<std::string> lines, size_t next, std::chrono::milliseconds timeout,
                                   std::vector<smtp::Reply> acc, RepliesDone done) {
  if (next == lines.size()) {
    done(true, std::move(acc));
    return;
  }
  auto self = shared_from_this();
  std::string line = lines[next] + "\r\n";
  send(std::move(line), 1, timeout,
       [self, lines = std::move(lines), next, timeout, acc = std::move(acc), done](
           bool ok, std::vector<smtp::Reply> r) mutable {
         if (!ok) {
           done(false, {});
           return;
         }
         acc.push_back(r[0]);
         self->sequential(std::move(lines), next + 1, timeout, std::move(acc), std::move(done));
       });
}

std::shared_ptr<BackendConnection> BackendPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto now = std::chrono::steady_clock::now();
  while (!it->second.empty()) {
    auto c = std::move(it->second.back());
    it->second.pop_back();
    if (auto* m = edge_metrics()) m->backend_idle.add(-1);
    if (c->usable() && now - c->idle_since < idle_timeout_) return c;
    c->close();
  }
  return nullptr;
}

void BackendPool::put(std::shared_ptr<BackendConnection> c) {
  if (!c->usable()) return;
  auto& q = idle_[c->key()];
  c->idle_since = std::chrono::steady_clock::now();
  q.push_back(std::move(c));
  if (auto* m = edge_metrics()) m->backend_idle.add(1);
  while (q.size() > max_idle_) {
    q.front()->close();
    q.pop_front();
    if (auto* m = edge_metrics()) m->backend_idle.add(-1);
  }
}

size_t BackendPool::idle() const {
  size_t n = 0;
  for (const auto& [k, q] : idle_) n += q.size();
  return n;
}

}  // namespace doorman::edge
