// doorman-tls-memory CERT KEY [SESSIONS]: what OpenSSL keeps per idle
// STARTTLS session on the edge, by allocation site (issue #16).
//
// Loads CERT/KEY through the edge's own TlsServerContext (the same SSL_CTX
// settings: released buffers, one ticket, ...), makes SESSIONS (200) TLS
// sessions over socketpairs in this process with the settings TlsStream puts
// on each SSL, exchanges an EHLO-sized command and reply in each, and then
// counts the bytes OpenSSL still holds for the server sides (through
// CRYPTO_set_mem_functions, so every OPENSSL_malloc has a file:line). Prints
// the bytes per session and the sites above 16 bytes per session. Requested
// sizes: malloc's own overhead (about 16 bytes an allocation) comes on top.
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "edge/tls/tls_context.h"

namespace {

struct Allocation {
  size_t size;
  const char* file;
  int line;
  bool server;
};
std::unordered_map<void*, Allocation>* live = nullptr;
bool tracking = false;
bool server_side = false;

void remember(void* p, size_t n, const char* file, int line) {
  if (!tracking || !p) return;
  tracking = false;  // the map allocates through malloc, not OPENSSL_malloc, but stay safe
  (*live)[p] = {n, file, line, server_side};
  tracking = true;
}
void forget(void* p) {
  if (!tracking || !p) return;
  tracking = false;
  live->erase(p);
  tracking = true;
}
void* on_malloc(size_t n, const char* file, int line) {
  void* p = std::malloc(n);
  remember(p, n, file, line);
  return p;
}
void* on_realloc(void* p, size_t n, const char* file, int line) {
  forget(p);
  void* q = std::realloc(p, n);
  remember(q, n, file, line);
  return q;
}
void on_free(void* p, const char*, int) {
  forget(p);
  std::free(p);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: doorman-tls-memory CERT KEY [SESSIONS]\n");
    return 2;
  }
  live = new std::unordered_map<void*, Allocation>();
  CRYPTO_set_mem_functions(on_malloc, on_realloc, on_free);
  int sessions = argc > 3 ? std::atoi(argv[3]) : 200;
  doorman::edge::TlsServerSettings settings;
  settings.cert_file = argv[1];
  settings.key_file = argv[2];
  doorman::edge::TlsServerContext server_context(settings);
  if (std::string err = server_context.load(); !err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  SSL_CTX* server = server_context.current()->native_handle();
  SSL_CTX* client = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_mode(client, SSL_MODE_RELEASE_BUFFERS);
  std::string version;
  tracking = true;
  for (int i = 0; i < sessions; ++i) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    server_side = true;
    SSL* s = SSL_new(server);  // as TlsStream does
    SSL_set_fd(s, fds[0]);
    SSL_set_accept_state(s);
    SSL_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_read_ahead(s, 1);
    server_side = false;
    SSL* c = SSL_new(client);
    SSL_set_fd(c, fds[1]);
    SSL_set_connect_state(c);
    int sr = 0, cr = 0;
    for (int k = 0; k < 100 && (sr != 1 || cr != 1); ++k) {
      server_side = false;
      if (cr != 1) cr = SSL_do_handshake(c);
      server_side = true;
      if (sr != 1) sr = SSL_do_handshake(s);
    }
    if (sr != 1 || cr != 1) {
      std::fprintf(stderr, "handshake failed\n");
      return 1;
    }
    char buf[16384];
    size_t n = 0;
    const std::string ehlo = "EHLO client.test\r\n", reply(200, 'x');
    server_side = false;
    SSL_write_ex(c, ehlo.data(), ehlo.size(), &n);
    server_side = true;
    while (SSL_read_ex(s, buf, sizeof buf, &n) != 1) {
    }
    SSL_write_ex(s, reply.data(), reply.size(), &n);
    server_side = false;
    while (SSL_read_ex(c, buf, sizeof buf, &n) != 1) {
    }
    version = SSL_get_version(s);
    // Both ends stay open: idle sessions.
  }
  tracking = false;
  std::map<std::string, std::pair<size_t, size_t>> by_site;  // bytes, allocations
  size_t total = 0, count = 0;
  for (const auto& [p, a] : *live) {
    if (!a.server) continue;
    std::string site = std::string(a.file ? a.file : "?") + ":" + std::to_string(a.line);
    by_site[site].first += a.size;
    by_site[site].second += 1;
    total += a.size;
    ++count;
  }
  std::vector<std::pair<size_t, std::string>> sites;
  for (const auto& [site, v] : by_site) {
    char line[512];
    std::snprintf(line, sizeof line, "%7.0f B %5.2f allocations  %s", static_cast<double>(v.first) / sessions,
                  static_cast<double>(v.second) / sessions, site.c_str());
    sites.emplace_back(v.first, line);
  }
  std::sort(sites.rbegin(), sites.rend());
  std::printf("tls_sessions=%d version=%s openssl_bytes_per_idle_session=%.0f allocations_per_session=%.1f\n", sessions,
              version.c_str(), static_cast<double>(total) / sessions, static_cast<double>(count) / sessions);
  for (const auto& [bytes, line] : sites)
    if (bytes / static_cast<size_t>(sessions) >= 16) std::printf("  %s\n", line.c_str());
  return 0;
}
