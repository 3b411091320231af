// Maps the directory's Status onto grpc::Status (admin errors as gRPC codes).
#pragma once

#include <grpcpp/support/status.h>

#include "directory/store/status.h"

namespace doorman::directory::service {

inline grpc::Status to_grpc(const Status& s) {
  switch (s.code) {
    case Code::kOk: return grpc::Status::OK;
    case Code::kInvalidArgument: return {grpc::StatusCode::INVALID_ARGUMENT, s.message};
    case Code::kNotFound: return {grpc::StatusCode::NOT_FOUND, s.message};
    case Code::kAlreadyExists: return {grpc::StatusCode::ALREADY_EXISTS, s.message};
    case Code::kUnavailable: return {grpc::StatusCode::UNAVAILABLE, s.message};
    case Code::kInternal: return {grpc::StatusCode::INTERNAL, s.message};
    case Code::kFailedPrecondition: return {grpc::StatusCode::FAILED_PRECONDITION, s.message};
  }
  return {grpc::StatusCode::UNKNOWN, s.message};
}

}  // namespace doorman::directory::service
