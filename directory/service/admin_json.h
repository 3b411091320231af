// The JSON form of admin API messages, one definition for every reader:
// `doormanctl --output json` and the web console's JSON API print the same
// fields. Protobuf's canonical JSON mapping with the .proto field names
// (snake_case, as in the apply file), every field present (defaults too, so
// scripts need no special case for false, 0 or ""), enums by name; 64-bit
// integers are strings, as the mapping prescribes.
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <string>
#include <string_view>

namespace doorman::directory {

inline std::string admin_json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

// A JSON string literal for `s` (quotes, backslashes and control characters
// escaped), for output that is streamed rather than built as one message.
inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace doorman::directory
