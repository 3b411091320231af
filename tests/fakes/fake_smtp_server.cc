#include "tests/fakes/fake_smtp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

namespace doorman::test {

namespace {

constexpr size_t kMaxLine = 64 * 1024;

std::string upper_verb(const std::string& line) {
  std::string v;
  for (char ch : line) {
    if (ch == ' ' || ch == ':') break;
    v.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
  }
  return v;
}

bool starts_with_ci(const std::string& s, const std::string& prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

int reply_code(const std::string& reply) {
  if (reply.size() < 3 || !std::isdigit(static_cast<unsigned char>(reply[0]))) return 0;
  return std::stoi(reply.substr(0, 3));
}

std::string trim(std::string s) {
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

struct FakeSmtpServer::Conn {
  int fd = -1;
  size_t index = 0;
};

FakeSmtpServer::FakeSmtpServer() = default;
FakeSmtpServer::~FakeSmtpServer() { stop(); }

bool FakeSmtpServer::start(int port) {
  if (listen_fd_ >= 0) return true;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return false;
  }
  port_ = ntohs(addr.sin_port);
  listen_fd_ = fd;
  stopping_ = false;
  accept_thread_ = std::thread([this] { accept_loop(); });
  return true;
}

void FakeSmtpServer::stop() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  if (accept_thread_.joinable()) accept_thread_.join();
  close(listen_fd_);
  listen_fd_ = -1;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_)
      if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads)
    if (t.joinable()) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  conns_.clear();
}

void FakeSmtpServer::set_responder(Responder r) {
  std::lock_guard<std::mutex> lock(mu_);
  responder_ = std::move(r);
}
void FakeSmtpServer::set_greeting(std::string g) {
  std::lock_guard<std::mutex> lock(mu_);
  greeting_ = std::move(g);
}
void FakeSmtpServer::set_extensions(std::vector<std::string> ext) {
  std::lock_guard<std::mutex> lock(mu_);
  extensions_ = std::move(ext);
}
void FakeSmtpServer::set_data_reply(FakeAction a) {
  std::lock_guard<std::mutex> lock(mu_);
  data_reply_ = std::move(a);
}
void FakeSmtpServer::set_lenient_end_of_data(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  lenient_ = on;
}
void FakeSmtpServer::set_close_during_data_after(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  close_after_ = bytes;
}

std::vector<FakeTransaction> FakeSmtpServer::transactions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return transactions_;
}
size_t FakeSmtpServer::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return raw_.size();
}
size_t FakeSmtpServer::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}
size_t FakeSmtpServer::commands(const std::string& verb) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = verbs_.find(verb);
  return it == verbs_.end() ? 0 : it->second;
}
std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> FakeSmtpServer::rcpt_log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rcpt_log_;
}
std::string FakeSmtpServer::raw(size_t connection) const {
  std::lock_guard<std::mutex> lock(mu_);
  return connection < raw_.size() ? raw_[connection] : std::string();
}

bool FakeSmtpServer::wait_for_transactions(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    size_t done = 0;
    for (const auto& t : transactions_) done += t.completed ? 1 : 0;
    return done >= n;
  });
}

bool FakeSmtpServer::wait_for_commands(const std::string& verb, size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = verbs_.find(verb);
    return it != verbs_.end() && it->second >= n;
  });
}

void FakeSmtpServer::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    int r = poll(&p, 1, 50);
    if (r <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto c = std::make_shared<Conn>();
    c->fd = fd;
    std::lock_guard<std::mutex> lock(mu_);
    c->index = raw_.size();
    raw_.emplace_back();
    ++open_;
    conns_.push_back(c);
    threads_.emplace_back([this, c] { serve(c); });
    cv_.notify_all();
  }
}

void FakeSmtpServer::serve(std::shared_ptr<Conn> c) {
  const int fd = c->fd;
  auto send_all = [&](const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  };
  auto sleep_for = [&](std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (!stopping_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  auto respond = [&](const std::string& line) -> std::optional<FakeAction> {
    Responder r;
    {
      std::lock_guard<std::mutex> lock(mu_);
      r = responder_;
    }
    if (!r) return std::nullopt;
    return r(line);
  };

  std::string helo;
  long txn = -1;        // index into transactions_ while a transaction is open
  bool in_data = false;
  std::string dbuf;     // "\r\n" + data bytes of the current DATA phase
  size_t scanned = 0;
  std::string buf;      // unprocessed input
  bool open = true;

  auto finish = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    cv_.notify_all();
  };

  // Greeting.
  {
    std::string greeting;
    {
      std::lock_guard<std::mutex> lock(mu_);
      greeting = greeting_;
    }
    auto a = respond("<connect>");
    if (a) {
      sleep_for(a->delay);
      if (a->reply) greeting = *a->reply;
      if (a->close && !a->reply) open = false;
    }
    if (open && !send_all(greeting)) open = false;
    if (a && a->close) open = false;
  }

  // Finds the end of data in dbuf; returns true with the data length and the
  // offset just after the terminating line.
  auto find_end = [&](bool lenient, size_t* data_len, size_t* after) {
    size_t from = scanned > 6 ? scanned - 6 : 0;
    for (size_t i = std::max<size_t>(from, 1); i < dbuf.size(); ++i) {
      if (dbuf[i] != '.') continue;
      size_t prelen = 0;
      if (i >= 2 && dbuf[i - 2] == '\r' && dbuf[i - 1] == '\n') prelen = 2;
      else if (lenient && (dbuf[i - 1] == '\n' || dbuf[i - 1] == '\r')) prelen = 1;
      if (prelen == 0) continue;
      size_t postlen = 0;
      if (i + 2 < dbuf.size() && dbuf.compare(i + 1, 2, "\r\n") == 0) postlen = 2;
      else if (!lenient) continue;
      else if (i + 1 < dbuf.size() && dbuf[i + 1] == '\n') postlen = 1;
      else if (i + 1 < dbuf.size() && dbuf[i + 1] == '\r') {
        if (i + 2 >= dbuf.size()) return false;  // CR or CRLF? wait for more
        postlen = 1;
      }
      if (postlen == 0) continue;
      size_t start = i - prelen;  // the line break before the dot
      *data_len = start == 0 ? 0 : start + prelen - 2;
      *after = i + 1 + postlen;
      return true;
    }
    scanned = dbuf.size();
    return false;
  };

  char chunk[16384];
  while (open && !stopping_) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      raw_[c->index].append(chunk, static_cast<size_t>(n));
    }
    buf.append(chunk, static_cast<size_t>(n));

    while (open) {
      if (in_data) {
        dbuf += buf;
        buf.clear();
        bool lenient;
        size_t close_after;
        {
          std::lock_guard<std::mutex> lock(mu_);
          lenient = lenient_;
          close_after = close_after_;
        }
        size_t data_len = 0, after = 0;
        bool end = find_end(lenient, &data_len, &after);
        if (close_after > 0 && dbuf.size() - 2 >= close_after && (!end || data_len >= close_after)) {
          std::lock_guard<std::mutex> lock(mu_);
          if (txn >= 0) transactions_[static_cast<size_t>(txn)].data = dbuf.substr(2, close_after);
          open = false;
          break;
        }
        if (!end) break;
        std::string data = data_len == 0 ? std::string() : dbuf.substr(2, data_len);
        buf = dbuf.substr(after);
        dbuf.clear();
        scanned = 0;
        in_data = false;
        FakeAction reply_action;
        {
          std::lock_guard<std::mutex> lock(mu_);
          reply_action = data_reply_;
          if (txn >= 0) transactions_[static_cast<size_t>(txn)].data = data;
        }
        if (auto a = respond("<data>")) {
          reply_action.delay = a->delay;
          reply_action.close = a->close;
          if (a->reply) reply_action.reply = a->reply;
        }
        sleep_for(reply_action.delay);
        std::string reply = reply_action.reply.value_or("250 2.0.0 Ok: queued\r\n");
        if (!send_all(reply)) {
          open = false;
          break;
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (txn >= 0) transactions_[static_cast<size_t>(txn)].completed = true;
          cv_.notify_all();
        }
        txn = -1;
        if (reply_action.close) open = false;
        continue;
      }

      size_t nl = buf.find('\n');
      if (nl == std::string::npos) {
        if (buf.size() > kMaxLine) {
          send_all("500 5.5.2 Line too long\r\n");
          open = false;
        }
        break;
      }
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::string verb = upper_verb(line);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++verbs_[verb];
        if (verb == "RCPT") rcpt_log_.emplace_back(std::chrono::steady_clock::now(), trim(line.substr(std::min(line.size(), size_t{8}))));
        cv_.notify_all();
      }

      // Default reply.
      std::string reply;
      if (verb == "EHLO") {
        std::vector<std::string> ext;
        {
          std::lock_guard<std::mutex> lock(mu_);
          ext = extensions_;
        }
        reply = ext.empty() ? "250 fake.test\r\n" : "250-fake.test\r\n";
        for (size_t i = 0; i < ext.size(); ++i) reply += (i + 1 < ext.size() ? "250-" : "250 ") + ext[i] + "\r\n";
      } else if (verb == "HELO") {
        reply = "250 fake.test\r\n";
      } else if (verb == "MAIL") {
        reply = starts_with_ci(line, "MAIL FROM:") ? "250 2.1.0 Ok\r\n" : "501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
      } else if (verb == "RCPT") {
        if (txn < 0) reply = "503 5.5.1 Error: need MAIL command\r\n";
        else if (!starts_with_ci(line, "RCPT TO:")) reply = "501 5.5.4 Syntax: RCPT TO:<address>\r\n";
        else reply = "250 2.1.5 Ok\r\n";
      } else if (verb == "DATA") {
        bool have_rcpt = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          have_rcpt = txn >= 0 && !transactions_[static_cast<size_t>(txn)].rcpts.empty();
        }
        reply = txn < 0 ? "503 5.5.1 Error: need RCPT command\r\n"
                : have_rcpt ? "354 End data with <CR><LF>.<CR><LF>\r\n"
                            : "554 5.5.1 Error: no valid recipients\r\n";
      } else if (verb == "RSET" || verb == "NOOP") {
        reply = "250 2.0.0 Ok\r\n";
      } else if (verb == "QUIT") {
        reply = "221 2.0.0 Bye\r\n";
      } else {
        reply = "500 5.5.2 Error: command not recognized\r\n";
      }
      bool close_after_reply = verb == "QUIT";
      if (auto a = respond(line)) {
        sleep_for(a->delay);
        if (a->reply) reply = *a->reply;
        else if (a->close) reply.clear();
        if (a->close) close_after_reply = true;
      }
      int code = reply_code(reply);

      // State follows the reply that is sent.
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (verb == "EHLO" || verb == "HELO") {
          if (code / 100 == 2) {
            helo = trim(line.substr(4));
            txn = -1;
          }
        } else if (verb == "MAIL" && code / 100 == 2) {
          FakeTransaction t;
          t.connection = c->index;
          t.helo = helo;
          t.mail_from = trim(line.size() > 10 ? line.substr(10) : std::string());
          transactions_.push_back(std::move(t));
          txn = static_cast<long>(transactions_.size() - 1);
        } else if (verb == "RCPT" && code / 100 == 2 && txn >= 0) {
          transactions_[static_cast<size_t>(txn)].rcpts.push_back(trim(line.size() > 8 ? line.substr(8) : ""));
        } else if (verb == "DATA" && code == 354 && txn >= 0) {
          transactions_[static_cast<size_t>(txn)].data_started = true;
          in_data = true;
          dbuf = "\r\n";
          scanned = 0;
        } else if (verb == "RSET" && code / 100 == 2) {
          txn = -1;
        }
        cv_.notify_all();
      }
      if (!reply.empty() && !send_all(reply)) open = false;
      if (close_after_reply) open = false;
    }
  }
  ::shutdown(fd, SHUT_RDWR);
  {
    std::lock_guard<std::mutex> lock(mu_);
    close(fd);
    c->fd = -1;
  }
  finish();
}

}  // namespace doorman::test
