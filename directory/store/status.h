// Status values for the directory's data path: no exceptions below the gRPC
// handlers. A Status carries a code that maps one-to-one onto a gRPC status
// code (services translate with to_grpc in service/grpc_status.h).
#pragma once

#include <string>
#include <utility>

namespace doorman::directory {

enum class Code {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kUnavailable,  // Redis unreachable or failed: temporary, safe to retry
  kInternal,     // a reply we did not expect: a bug or a foreign schema
  kFailedPrecondition,  // the store is not configured (marker missing): temporary, defer
};

struct Status {
  Code code = Code::kOk;
  std::string message;

  bool ok() const { return code == Code::kOk; }
  static Status Ok() { return {}; }
  static Status Error(Code c, std::string m) { return {c, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
};

}  // namespace doorman::directory
