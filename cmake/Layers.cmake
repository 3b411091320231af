# Layering, enforced by the compiler (issue #17): each library exposes only
# its own top-level folder. `doorman_expose(target edge)` makes
# ${CMAKE_BINARY_DIR}/layers/edge/edge a link to the source folder edge/ and
# adds ${CMAKE_BINARY_DIR}/layers/edge to the target's PUBLIC include path,
# so `#include "edge/..."` works for the target and whatever links it, while
# an edge/ file that includes "directory/..." fails to build: no include
# path shows that folder to it. Tests (tests/) may include anything.
function(doorman_expose target folder)
  set(dir ${CMAKE_BINARY_DIR}/layers/${folder})
  if(NOT EXISTS ${dir}/${folder})
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${dir}/${folder} SYMBOLIC)
  endif()
  target_include_directories(${target} PUBLIC ${dir})
endfunction()
