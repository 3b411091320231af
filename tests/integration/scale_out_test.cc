// Issue #5, scale-out proof: two edges and two directories on one Redis, all real processes on loopback, the way
// the Helm chart runs them (several edge pods; directory pods behind a headless Service that the edges' gRPC
// client balances with round_robin). Each edge gets both directories in one gRPC target,
// "ipv4:127.0.0.1:P1,127.0.0.1:P2". The back-end is the recording FakeSmtpServer.
//
//   - mail flows through either edge;
//   - directory load spreads over both directories (event=check lines in each directory's log);
//   - killing one directory (SIGKILL) under load loses no transaction: every RCPT gets 250 or a 4xx (never 5xx),
//     every message answered 250 is at the back-end, and mail keeps flowing through the surviving directory;
//   - SIGTERM to an edge during active transactions ends each of them with the back-end's verdict or a 421, idle
//     sessions get 421 4.3.2, and the edge exits 0;
//   - the harvest defence is shared: unknown recipients sent by one client through both edges add up in Redis,
//     so the tarpit and then the deferral trip although neither edge alone saw enough to trip them.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/support/smtp_client.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace doorman::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size())) ++n;
  return n;
}

// Outcome of one transaction as the sending server saw it.
struct Outcome {
  std::string id;     // X-Scale-Id header value, unique per message
  std::string rcpt;   // reply to RCPT TO
  std::string final;  // reply to the final dot ("" if DATA was not reached)
  int edge = 0;
};

class ScaleOut : public ::testing::Test {
 protected:
  static constexpr int kDirectories = 2;
  static constexpr int kEdges = 2;

  void SetUp() override {
    dir_ = make_temp_dir("doorman-scale");
    ASSERT_TRUE(backend_.start());
    ASSERT_TRUE(redis_.start()) << redis_.error();
    for (int i = 0; i < kDirectories; ++i) {
      directory_ports_[i] = free_tcp_port();
      std::ofstream(dir_ + "/admin-token") << "scale-out-token\n";
      ASSERT_EQ(start_directory(i), "");
    }
    std::string path = dir_ + "/domains.yaml";
    std::ofstream(path) << "domains:\n"
                           "  - name: example.com\n"
                           "    mode: list\n"
                           "    routes: [\"127.0.0.1:" << backend_.port() << "\"]\n"
                           "    addresses: [alice, bob, carol]\n";
    // Applied through one directory; the other sees the same Redis.
    RunResult r = run({DOORMANCTL_BIN, "--server", "127.0.0.1:" + std::to_string(directory_ports_[0]), "--token-file",
                       dir_ + "/admin-token", "apply", "-f", path});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  void TearDown() override {
    for (auto& e : edges_) e.stop();
    for (auto& d : directories_) d.stop();
    redis_.stop();
    backend_.stop();
    if (HasFailure()) std::cerr << logs();
    remove_tree(dir_);
  }

  std::string start_directory(int i) {
    std::vector<std::string> argv = {DOORMAN_DIRECTORY_BIN, "--listen",
                                     "127.0.0.1:" + std::to_string(directory_ports_[i]), "--redis-port",
                                     std::to_string(redis_.port()), "--redis-timeout-ms", "300",
                                     "--shutdown-grace-seconds", "1", "--log-level", "debug", "--http-listen=",
                                     "--admin-token-file", dir_ + "/admin-token"};
    argv.insert(argv.end(), directory_extra_.begin(), directory_extra_.end());
    if (!directories_[i].start(argv, dir_ + "/directory" + std::to_string(i) + ".log"))
      return "cannot start doorman-directory";
    if (!wait_for_port(directory_ports_[i], seconds(10))) return "directory did not listen\n" + logs();
    return "";
  }

  // Both directories in one target: gRPC resolves the list and round_robin spreads calls over it.
  std::string directory_target() const {
    std::string t = "ipv4:";
    for (int i = 0; i < kDirectories; ++i) t += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(directory_ports_[i]);
    return t;
  }

  std::string start_edges(int shutdown_grace_seconds = 10) {
    for (int i = 0; i < kEdges; ++i) {
      edge_ports_[i] = free_tcp_port();
      if (!edges_[i].start({DOORMAN_EDGE_BIN, "--listen", "127.0.0.1:" + std::to_string(edge_ports_[i]),
                            "--directory", directory_target(), "--hostname", "mx" + std::to_string(i) + ".test",
                            "--threads", "2", "--directory-timeout-ms", "1000", "--shutdown-grace-seconds",
                            std::to_string(shutdown_grace_seconds), "--log-level", "debug", "--http-listen=",
                            "--greet-pause-ms", "0"},
                           dir_ + "/edge" + std::to_string(i) + ".log"))
        return "cannot start doorman-edge";
      if (!wait_for_port(edge_ports_[i], seconds(10))) return "edge did not listen\n" + logs();
    }
    return "";
  }

  std::string logs() {
    std::string out;
    for (int i = 0; i < kEdges; ++i) out += "--- edge" + std::to_string(i) + " ---\n" + edges_[i].read_log();
    for (int i = 0; i < kDirectories; ++i)
      out += "--- directory" + std::to_string(i) + " ---\n" + directories_[i].read_log();
    return out;
  }

  bool open(SmtpClient& c, int edge) {
    if (!c.connect(edge_ports_[edge])) return false;
    if (c.reply().substr(0, 4) != "220 ") return false;
    return c.command("EHLO client.test").substr(0, 4) == "250-";
  }

  // One transaction on an open session. Stops at the first refusal; RSETs after a refused RCPT.
  Outcome transaction(SmtpClient& c, int edge, const std::string& rcpt, const std::string& id) {
    Outcome o;
    o.id = id;
    o.edge = edge;
    std::string r = c.command("MAIL FROM:<sender@remote.test>");
    if (r.substr(0, 3) != "250") { o.rcpt = "MAIL: " + r; return o; }
    o.rcpt = c.command("RCPT TO:<" + rcpt + ">");
    if (o.rcpt.substr(0, 3) != "250") { c.command("RSET"); return o; }
    r = c.command("DATA");
    if (r.substr(0, 3) != "354") { o.final = "DATA: " + r; return o; }
    c.send("Subject: scale-out\r\nX-Scale-Id: " + id + "\r\n\r\nbody of " + id + "\r\n.\r\n");
    o.final = c.reply(20000);
    return o;
  }

  // Every message that got 250 after the dot is at the back-end, exactly once.
  void expect_every_accepted_message_delivered(const std::vector<Outcome>& outcomes) {
    auto txs = backend_.transactions();
    for (const auto& o : outcomes) {
      if (o.final.substr(0, 3) != "250") continue;
      size_t found = 0;
      for (const auto& t : txs)
        if (t.completed && t.data.find("X-Scale-Id: " + o.id + "\r\n") != std::string::npos) ++found;
      EXPECT_EQ(found, 1u) << "message " << o.id << " was answered 250 but reached the back-end " << found << " times";
    }
  }

  std::string dir_;
  FakeSmtpServer backend_;
  RedisServer redis_;
  std::vector<std::string> directory_extra_;  // added to each directory's command line
  Process directories_[kDirectories];
  int directory_ports_[kDirectories] = {};
  Process edges_[kEdges];
  int edge_ports_[kEdges] = {};
};

TEST_F(ScaleOut, MailFlowsThroughEitherEdge) {
  ASSERT_EQ(start_edges(), "");
  std::vector<Outcome> outcomes;
  for (int e = 0; e < kEdges; ++e) {
    SmtpClient c;
    ASSERT_TRUE(open(c, e)) << logs();
    for (int i = 0; i < 5; ++i) {
      Outcome o = transaction(c, e, "alice@example.com", "e" + std::to_string(e) + "-" + std::to_string(i));
      EXPECT_EQ(o.rcpt.substr(0, 4), "250 ") << o.rcpt;
      EXPECT_EQ(o.final.substr(0, 10), "250 2.0.0 ") << o.final;
      outcomes.push_back(o);
    }
    Outcome unknown = transaction(c, e, "nobody@example.com", "unknown");
    EXPECT_EQ(unknown.rcpt.substr(0, 10), "550 5.1.1 ") << unknown.rcpt;
    EXPECT_EQ(c.command("QUIT").substr(0, 3), "221");
  }
  ASSERT_TRUE(backend_.wait_for_transactions(2 * 5, seconds(5)));
  expect_every_accepted_message_delivered(outcomes);
  // Each edge signs its own Received header.
  size_t by0 = 0, by1 = 0;
  for (const auto& t : backend_.transactions()) {
    if (t.data.find("by mx0.test") != std::string::npos) ++by0;
    if (t.data.find("by mx1.test") != std::string::npos) ++by1;
  }
  EXPECT_EQ(by0, 5u);
  EXPECT_EQ(by1, 5u);
}

TEST_F(ScaleOut, DirectoryLoadSpreadsOverBothDirectories) {
  ASSERT_EQ(start_edges(), "");
  constexpr int kChecks = 40;  // RCPT groups, i.e. directory calls, per edge
  for (int e = 0; e < kEdges; ++e) {
    SmtpClient c;
    ASSERT_TRUE(open(c, e)) << logs();
    ASSERT_EQ(c.command("MAIL FROM:<sender@remote.test>").substr(0, 3), "250");
    for (int i = 0; i < kChecks; ++i) {
      // Not pipelined: one RCPT = one call. Listed addresses only: refusals count as client errors and would
      // slow the session down (soft error limit) and end it (hard error limit).
      static const char* const kListed[] = {"alice", "bob", "carol"};
      std::string r = c.command(std::string("RCPT TO:<") + kListed[i % 3] + "@example.com>");
      EXPECT_EQ(r.substr(0, 3), "250") << r;
      if (i % 10 == 9) {
        ASSERT_EQ(c.command("RSET").substr(0, 3), "250");
        ASSERT_EQ(c.command("MAIL FROM:<sender@remote.test>").substr(0, 3), "250");
      }
    }
    c.command("QUIT");
  }
  size_t checks[kDirectories];
  size_t total = 0;
  for (int d = 0; d < kDirectories; ++d) {
    checks[d] = count(directories_[d].read_log(), "event=check ");
    total += checks[d];
  }
  std::cerr << "directory checks: " << checks[0] << " + " << checks[1] << " of " << total << "\n";
  EXPECT_EQ(total, static_cast<size_t>(kEdges * kChecks)) << logs();
  for (int d = 0; d < kDirectories; ++d) {
    // round_robin alternates per call; allow for the first calls made before both subchannels were ready.
    EXPECT_GE(checks[d], total / 4) << "directory " << d << " served " << checks[d] << " of " << total << " checks";
  }
}

TEST_F(ScaleOut, KillingOneDirectoryLosesNoTransaction) {
  ASSERT_EQ(start_edges(), "");
  std::mutex mu;
  std::vector<Outcome> outcomes;
  std::atomic<bool> stop{false};
  std::atomic<int> sequence{0};
  std::atomic<int> accepted_after_kill{0};
  std::atomic<bool> killed{false};

  auto sender = [&](int worker) {
    int edge = worker % kEdges;
    while (!stop) {
      SmtpClient c;
      if (!open(c, edge)) {
        std::lock_guard<std::mutex> lock(mu);
        outcomes.push_back({"connect-" + std::to_string(worker), "no session", "", edge});
        std::this_thread::sleep_for(milliseconds(50));
        continue;
      }
      for (int i = 0; i < 5 && !stop; ++i) {
        bool after_kill = killed;
        Outcome o = transaction(c, edge, i % 2 ? "carol@example.com" : "alice@example.com",
                                "w" + std::to_string(worker) + "-" + std::to_string(sequence++));
        if (after_kill && o.final.substr(0, 3) == "250") ++accepted_after_kill;
        std::lock_guard<std::mutex> lock(mu);
        outcomes.push_back(o);
      }
      c.command("QUIT");
    }
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) workers.emplace_back(sender, w);

  std::this_thread::sleep_for(milliseconds(1500));
  ASSERT_TRUE(directories_[0].signal(SIGKILL));
  EXPECT_NE(directories_[0].wait(seconds(5)), -1);
  killed = true;
  std::this_thread::sleep_for(milliseconds(3000));
  stop = true;
  for (auto& t : workers) t.join();

  size_t ok = 0, deferred = 0;
  for (const auto& o : outcomes) {
    ASSERT_NE(o.rcpt, "no session") << "an edge refused a session";
    // Never a permanent refusal of a listed recipient, never a lost accepted message.
    ASSERT_TRUE(o.rcpt.substr(0, 3) == "250" || o.rcpt[0] == '4') << o.id << ": RCPT got " << o.rcpt;
    if (o.rcpt[0] == '4') {
      EXPECT_EQ(o.rcpt.substr(0, 10), "451 4.4.3 ") << o.rcpt;
      ++deferred;
      continue;
    }
    ASSERT_TRUE(o.final.substr(0, 3) == "250" || o.final[0] == '4') << o.id << ": final dot got " << o.final;
    if (o.final.substr(0, 3) == "250") ++ok;
  }
  std::cerr << "transactions: " << outcomes.size() << ", delivered " << ok << ", deferred at RCPT " << deferred
            << ", delivered after the kill " << accepted_after_kill << "\n";
  EXPECT_GT(accepted_after_kill.load(), 0) << "no mail flowed through the surviving directory";
  // A handful of calls in flight on the killed directory may defer; most mail must still get through.
  EXPECT_GT(ok, outcomes.size() / 2);
  EXPECT_TRUE(backend_.wait_for_transactions(ok, seconds(5)));
  expect_every_accepted_message_delivered(outcomes);

  // The surviving directory carries on alone: a fresh check through each edge is answered 250.
  for (int e = 0; e < kEdges; ++e) {
    SmtpClient c;
    ASSERT_TRUE(open(c, e));
    Outcome o = transaction(c, e, "bob@example.com", "after-" + std::to_string(e));
    EXPECT_EQ(o.rcpt.substr(0, 3), "250") << o.rcpt;
    EXPECT_EQ(o.final.substr(0, 3), "250") << o.final;
  }
}

TEST_F(ScaleOut, SigtermToAnEdgeEndsTransactionsWithTheVerdictOr421) {
  ASSERT_EQ(start_edges(/*shutdown_grace_seconds=*/10), "");
  // The back-end takes its time with the final dot, so transactions are in progress when SIGTERM arrives.
  backend_.set_data_reply({std::string("250 2.0.0 Ok: queued slowly\r\n"), milliseconds(1500), false});
  constexpr int kBusy = 6;

  // An idle session, open before the SIGTERM: it must get 421 4.3.2 at once.
  SmtpClient idle;
  ASSERT_TRUE(open(idle, 0));

  std::mutex mu;
  std::vector<Outcome> outcomes;
  std::vector<std::thread> busy;
  for (int i = 0; i < kBusy; ++i) {
    busy.emplace_back([&, i] {
      SmtpClient c;
      Outcome o;
      if (!open(c, 0)) {
        o = {"busy-" + std::to_string(i), "no session", "", 0};
      } else {
        o = transaction(c, 0, "alice@example.com", "busy-" + std::to_string(i));
      }
      std::lock_guard<std::mutex> lock(mu);
      outcomes.push_back(o);
    });
  }
  // Every message is on its way to the back-end (the edge streams it while the client sends).
  ASSERT_TRUE(backend_.wait_for_commands("DATA", kBusy, seconds(10))) << logs();
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_TRUE(edges_[0].signal(SIGTERM));

  std::string r = idle.reply(5000);
  EXPECT_EQ(r.substr(0, 10), "421 4.3.2 ") << r;

  for (auto& t : busy) t.join();
  EXPECT_EQ(edges_[0].wait(seconds(20)), 0) << "the edge did not exit 0 after draining\n" << logs();

  ASSERT_EQ(outcomes.size(), static_cast<size_t>(kBusy));
  for (const auto& o : outcomes) {
    ASSERT_EQ(o.rcpt.substr(0, 3), "250") << o.id << ": " << o.rcpt;
    // The back-end's verdict (its 250 after the delay) or a 421; never a cut connection, never a 5xx.
    EXPECT_TRUE(o.final.substr(0, 3) == "250" || o.final.substr(0, 3) == "421") << o.id << ": " << o.final;
  }
  expect_every_accepted_message_delivered(outcomes);

  // The other edge keeps serving.
  backend_.set_data_reply({std::string("250 2.0.0 Ok: queued\r\n"), milliseconds(0), false});
  SmtpClient c;
  ASSERT_TRUE(open(c, 1));
  Outcome o = transaction(c, 1, "carol@example.com", "after-sigterm");
  EXPECT_EQ(o.final.substr(0, 3), "250") << o.final;
}

TEST_F(ScaleOut, HarvestCountIsSharedByBothEdges) {
  // Restart the directories with low thresholds: past 2 unknown recipients
  // rejections are tarpitted 400 ms, past 5 the client is deferred.
  for (auto& d : directories_) d.stop();
  directory_extra_ = {"--harvest-window", "60s", "--harvest-tarpit-threshold", "2", "--harvest-tarpit-delay",
                      "400ms", "--harvest-defer-threshold", "5", "--harvest-cooldown", "60s"};
  for (int i = 0; i < kDirectories; ++i) ASSERT_EQ(start_directory(i), "");
  ASSERT_EQ(start_edges(), "");

  // One session per RCPT, so the per-session error limits play no part.
  auto rcpt = [&](int edge, const std::string& to, milliseconds* took) {
    SmtpClient c;
    if (!open(c, edge)) return std::string("session failed");
    if (c.command("MAIL FROM:<sender@remote.test>").substr(0, 3) != "250") return std::string("MAIL failed");
    auto t0 = std::chrono::steady_clock::now();
    std::string r = c.command("RCPT TO:<" + to + ">");
    if (took) *took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
    c.command("QUIT");
    return r;
  };

  // Five unknown recipients, alternating edges: edge 0 sees three, edge 1 two.
  std::vector<milliseconds> took(5);
  for (int i = 0; i < 5; ++i) {
    std::string r = rcpt(i % 2, "unknown" + std::to_string(i) + "@example.com", &took[i]);
    EXPECT_EQ(r.substr(0, 9), "550 5.1.1") << "unknown #" << i << ": " << r;
    std::this_thread::sleep_for(milliseconds(150));  // the count is written after each reply
  }
  // The first two are answered at once; from the fourth on (count 3 > 2,
  // counted over both edges) each rejection is held back by the tarpit.
  EXPECT_LT(took[0].count(), 400);
  for (int i = 3; i < 5; ++i) EXPECT_GE(took[i].count(), 350) << "unknown #" << i << " was not tarpitted";

  // Five reached the defer threshold: the client is now deferred on both
  // edges, even for a valid mailbox, although neither edge alone saw more
  // than three unknowns.
  for (int edge = 0; edge < kEdges; ++edge) {
    std::string r;
    for (int tries = 0; tries < 20; ++tries) {
      r = rcpt(edge, "alice@example.com", nullptr);
      if (r.substr(0, 3) != "250") break;
      std::this_thread::sleep_for(milliseconds(150));
    }
    EXPECT_EQ(r.substr(0, 9), "450 4.7.1") << "edge " << edge << ": " << r;
  }
}

}  // namespace
}  // namespace doorman::test
