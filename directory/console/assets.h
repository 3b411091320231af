// The console's static files (directory/console/web/*), compiled into the
// binary by cmake/EmbedFiles.cmake (a generated .cc holding their bytes): no
// files to ship, no CDN.
#pragma once

#include <string_view>

namespace doorman::directory::console {

struct Asset {
  std::string_view path;          // "/index.html"
  std::string_view content_type;  // from the file name's extension
  std::string_view body;
};

// nullptr when there is no such file.
const Asset* find_asset(std::string_view path);

}  // namespace doorman::directory::console
