// Typed, validated configuration for Doorman's programs.
//
// Every option has a name ("listen"), a default, bounds where numeric, and a
// help line. Values come from, in increasing precedence: the default, an
// optional file (--config FILE; "name = value" lines, '#' comments), the
// environment (PREFIX_NAME, e.g. DOORMAN_EDGE_LISTEN), and the command line
// (--name=value or --name value). --help prints every option with its default.
// Errors are returned as text naming the option and the source; nothing throws.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace doorman {

class Options {
 public:
  Options(std::string program, std::string env_prefix, std::string summary);

  void add_string(std::string name, std::string* target, std::string help);
  void add_int(std::string name, int64_t* target, int64_t min, int64_t max, std::string help);
  void add_bool(std::string name, bool* target, std::string help);
  // An option that no longer exists: given as a flag, in the file or in the
  // environment, parse() fails with "option --NAME was removed: MESSAGE"
  // (not "unknown option"). --help does not list it.
  void add_removed(std::string name, std::string message);

  // Parses all sources. Returns "" on success or an error message.
  // Positional arguments (not starting with "--") are collected in positional().
  std::string parse(int argc, const char* const* argv);
  bool help_requested() const { return help_requested_; }
  std::string help() const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  struct Option {
    std::string name;
    std::string help;
    std::string default_text;
    std::string env;
    bool is_bool = false;
    std::function<std::string(const std::string&)> set;  // "" or error
    std::string removed;  // add_removed: why, and what to use instead
  };
  Option* find(const std::string& name);
  std::string apply(Option& o, const std::string& value, const std::string& source);
  std::string parse_file(const std::string& path);

  std::string program_;
  std::string env_prefix_;
  std::string summary_;
  std::vector<Option> options_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace doorman
