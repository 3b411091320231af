#include "common/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "common/http_server.h"

namespace doorman::metrics {
namespace {

TEST(MetricsTest, RendersTextExposition) {
  Registry r;
  r.counter("doorman_test_things_total", "Things.", {{"kind", "a"}}).inc(3);
  r.counter("doorman_test_things_total", "Things.", {{"kind", "b\"q"}}).inc();
  r.gauge("doorman_test_level", "Level.").set(2.5);
  r.gauge_fn("doorman_test_computed", "Computed.", [] { return 7.0; });
  Histogram& h = r.histogram("doorman_test_seconds", "Latency.", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(3);
  std::string out = r.render();
  EXPECT_NE(out.find("# HELP doorman_test_things_total Things.\n# TYPE doorman_test_things_total counter\n"),
            std::string::npos);
  EXPECT_NE(out.find("doorman_test_things_total{kind=\"a\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("doorman_test_things_total{kind=\"b\\\"q\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("doorman_test_level 2.5\n"), std::string::npos);
  EXPECT_NE(out.find("doorman_test_computed 7\n"), std::string::npos);
  EXPECT_NE(out.find("doorman_test_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("doorman_test_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("doorman_test_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("doorman_test_seconds_sum 3.55\n"), std::string::npos);
  EXPECT_NE(out.find("doorman_test_seconds_count 3\n"), std::string::npos);
}

TEST(MetricsTest, SameSeriesIsReturnedAndCountsFromManyThreads) {
  Registry r;
  Counter& a = r.counter("doorman_test_total", "T.", {{"x", "1"}});
  EXPECT_EQ(&a, &r.counter("doorman_test_total", "T.", {{"x", "1"}}));
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int j = 0; j < 10000; ++j) a.inc();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(a.value(), 40000u);
}

}  // namespace
}  // namespace doorman::metrics
