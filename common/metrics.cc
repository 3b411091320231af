#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace doorman::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

Registry::Series& Registry::series(const std::string& name, const std::string& help, Type type, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  if (f.series.empty()) {
    f.help = help;
    f.type = type;
  }
  for (auto& s : f.series)
    if (s->labels == labels) return *s;
  f.series.push_back(std::make_unique<Series>());
  f.series.back()->labels = labels;
  return *f.series.back();
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  Series& s = series(name, help, Type::kCounter, labels);
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  Series& s = series(name, help, Type::kGauge, labels);
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                               const Labels& labels) {
  Series& s = series(name, help, Type::kHistogram, labels);
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(bounds);
  return *s.histogram;
}

void Registry::gauge_fn(const std::string& name, const std::string& help, std::function<double()> fn,
                        const Labels& labels) {
  Series& s = series(name, help, Type::kGauge, labels);
  std::lock_guard<std::mutex> lock(mu_);
  s.fn = std::move(fn);
}

namespace {
std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string label_text(const Labels& labels, const std::string& extra_key = "", const std::string& extra_value = "") {
  if (labels.empty() && extra_key.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    out += k + "=\"" + escape_label(v) + "\"";
    first = false;
  }
  if (!extra_key.empty()) {
    if (!first) out += ",";
    out += extra_key + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
  }
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}
}  // namespace

std::string Registry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(8192);
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter" : f.type == Type::kGauge ? "gauge" : "histogram";
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + type + "\n";
    for (const auto& s : f.series) {
      switch (f.type) {
        case Type::kCounter:
          out += name + label_text(s->labels) + " " + std::to_string(s->counter ? s->counter->value() : 0) + "\n";
          break;
        case Type::kGauge: {
          double v = s->fn ? s->fn() : (s->gauge ? s->gauge->value() : 0);
          out += name + label_text(s->labels) + " " + number(v) + "\n";
          break;
        }
        case Type::kHistogram: {
          if (!s->histogram) break;
          const Histogram& h = *s->histogram;
          auto cum = h.cumulative();
          for (size_t i = 0; i < h.bounds().size(); ++i)
            out += name + "_bucket" + label_text(s->labels, "le", number(h.bounds()[i])) + " " +
                   std::to_string(cum[i]) + "\n";
          out += name + "_bucket" + label_text(s->labels, "le", "+Inf") + " " + std::to_string(cum.back()) + "\n";
          out += name + "_sum" + label_text(s->labels) + " " + number(h.sum()) + "\n";
          out += name + "_count" + label_text(s->labels) + " " + std::to_string(cum.back()) + "\n";
          break;
        }
      }
    }
  }
  return out;
}

Registry& global() {
  static Registry r;
  return r;
}

}  // namespace doorman::metrics
