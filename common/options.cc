#include "common/options.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace doorman {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string env_name(const std::string& prefix, const std::string& name) {
  std::string out = prefix + "_";
  for (char c : name) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return out;
}

}  // namespace

Options::Options(std::string program, std::string env_prefix, std::string summary)
    : program_(std::move(program)), env_prefix_(std::move(env_prefix)), summary_(std::move(summary)) {}

void Options::add_string(std::string name, std::string* target, std::string help) {
  Option o{name, std::move(help), *target, env_name(env_prefix_, name), false,
           [target](const std::string& v) { *target = v; return std::string(); }, ""};
  options_.push_back(std::move(o));
}

void Options::add_int(std::string name, int64_t* target, int64_t min, int64_t max, std::string help) {
  help += " [" + std::to_string(min) + ".." + std::to_string(max) + "]";
  Option o{name, std::move(help), std::to_string(*target), env_name(env_prefix_, name), false,
           [target, min, max](const std::string& v) {
             int64_t x = 0;
             auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
             if (ec != std::errc() || p != v.data() + v.size()) return std::string("not an integer: '" + v + "'");
             if (x < min || x > max)
               return "out of range: " + v + " (allowed " + std::to_string(min) + ".." + std::to_string(max) + ")";
             *target = x;
             return std::string();
           },
           ""};
  options_.push_back(std::move(o));
}

void Options::add_bool(std::string name, bool* target, std::string help) {
  Option o{name, std::move(help), *target ? "true" : "false", env_name(env_prefix_, name), true,
           [target](const std::string& v) {
             if (v == "true" || v == "1" || v == "yes" || v == "on") *target = true;
             else if (v == "false" || v == "0" || v == "no" || v == "off") *target = false;
             else return std::string("not a boolean: '" + v + "' (use true or false)");
             return std::string();
           },
           ""};
  options_.push_back(std::move(o));
}

void Options::add_removed(std::string name, std::string message) {
  std::string env = env_name(env_prefix_, name);
  std::string error = "option --" + name + " was removed: " + message;
  Option o{name, "", "", env, false, [error](const std::string&) { return error; }, message};
  options_.push_back(std::move(o));
}

Options::Option* Options::find(const std::string& name) {
  for (auto& o : options_)
    if (o.name == name) return &o;
  return nullptr;
}

std::string Options::apply(Option& o, const std::string& value, const std::string& source) {
  if (!o.removed.empty()) return source + ": " + o.set(value);
  std::string err = o.set(value);
  if (!err.empty()) return source + ": option " + o.name + ": " + err;
  return "";
}

std::string Options::parse_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "cannot read config file " + path;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t eq = t.find('=');
    std::string where = path + ":" + std::to_string(n);
    if (eq == std::string::npos) return where + ": expected 'name = value'";
    std::string name = trim(t.substr(0, eq));
    std::string value = trim(t.substr(eq + 1));
    Option* o = find(name);
    if (!o) return where + ": unknown option '" + name + "'";
    std::string err = apply(*o, value, where);
    if (!err.empty()) return err;
  }
  return "";
}

std::string Options::parse(int argc, const char* const* argv) {
  // Command-line pairs are collected first so the config file can be applied
  // before them, whatever their order.
  std::vector<std::pair<std::string, std::string>> flags;
  std::string config;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      help_requested_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      Option* o = find(name);
      if (o && !o->removed.empty()) return apply(*o, "", "--" + name);
      if (o && o->is_bool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return "option --" + name + " needs a value";
      }
    }
    if (name == "config") {
      config = value;
      continue;
    }
    if (!find(name)) return "unknown option --" + name + " (see --help)";
    flags.emplace_back(name, value);
  }
  if (help_requested_) return "";
  if (config.empty()) {
    if (const char* e = std::getenv((env_prefix_ + "_CONFIG").c_str())) config = e;
  }
  if (!config.empty()) {
    std::string err = parse_file(config);
    if (!err.empty()) return err;
  }
  for (auto& o : options_) {
    if (const char* e = std::getenv(o.env.c_str())) {
      std::string err = apply(o, e, "environment " + o.env);
      if (!err.empty()) return err;
    }
  }
  for (auto& [name, value] : flags) {
    std::string err = apply(*find(name), value, "--" + name);
    if (!err.empty()) return err;
  }
  return "";
}

std::string Options::help() const {
  std::ostringstream out;
  out << "Usage: " << program_ << " [options]\n" << summary_ << "\n\n"
      << "Options (also from the environment, " << env_prefix_ << "_NAME, or a file given with\n"
      << "--config FILE / " << env_prefix_ << "_CONFIG, one 'name = value' per line):\n";
  for (const auto& o : options_) {
    if (!o.removed.empty()) continue;
    out << "  --" << o.name << (o.is_bool ? "" : "=VALUE") << "\n      " << o.help << "\n      default: "
        << (o.default_text.empty() ? "(empty)" : o.default_text) << "; env " << o.env << "\n";
  }
  return out.str();
}

}  // namespace doorman
