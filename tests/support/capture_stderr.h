// Captures what `f` writes to file descriptor 2 (the loggers of
// common/log.h write there), for tests of log lines.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

namespace doorman::test {

inline std::string capture_stderr(const std::function<void()>& f) {
  fflush(stderr);
  int saved = dup(2);
  FILE* tmp = tmpfile();
  dup2(fileno(tmp), 2);
  f();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  rewind(tmp);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, tmp)) > 0) out.append(buf, n);
  fclose(tmp);
  return out;
}

}  // namespace doorman::test
