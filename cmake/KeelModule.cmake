# SPDX-License-Identifier: MIT
# keel_add_module(NAME KIND device|accel|machine|block SOURCES ... [LIBRARIES ...] [OUTPUT_DIRECTORY dir] [NO_INDEX])
# builds lib<dir>/<kind>/libkeel-<kind>-<name>.so with hidden visibility, so the
# module exports only keel_module_info.
function(keel_add_module name)
  cmake_parse_arguments(M "NO_INDEX" "KIND;OUTPUT_DIRECTORY" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT M_KIND MATCHES "^(device|accel|machine|block)$")
    message(FATAL_ERROR "keel_add_module(${name}): KIND must be device, accel, machine or block, not '${M_KIND}'")
  endif()
  if(NOT M_OUTPUT_DIRECTORY)
    set(M_OUTPUT_DIRECTORY ${KEEL_MODULE_DIR}/${M_KIND})
  endif()
  set(target keel-${M_KIND}-${name})
  add_library(${target} MODULE ${M_SOURCES})
  target_link_libraries(${target} PRIVATE keel-plugin-api ${M_LIBRARIES})
  target_compile_options(${target} PRIVATE ${KEEL_WARNINGS})
  # -z defs: a module must not depend on kernel symbols; everything comes
  # through the service table.
  target_link_options(${target} PRIVATE -Wl,-z,defs)
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME keel-${M_KIND}-${name}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY ${M_OUTPUT_DIRECTORY})
  if(NOT M_NO_INDEX)
    set_property(GLOBAL APPEND PROPERTY KEEL_MODULE_TARGETS ${target})
  endif()
endfunction()
