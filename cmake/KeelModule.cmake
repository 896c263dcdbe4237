# SPDX-License-Identifier: MIT
# keel_add_module(NAME KIND device|accel|machine|block SOURCES ... [LIBRARIES ...] [OUTPUT_DIRECTORY dir]
#                 [NO_INDEX] [NO_INSTALL])
# builds <dir>/<kind>/libkeel-<kind>-<name>.so with hidden visibility and -z defs, so the module exports
# only keel_module_info and depends on no kernel symbol.
#
# One definition serves keel's own tree and modules built against an installed keel (find_package(Keel)
# includes this file from <prefix>/lib/cmake/Keel). What differs is set by the caller, with defaults for
# an out-of-tree project:
#   KEEL_PLUGIN_API_TARGET        the headers' target: keel-plugin-api in the tree, Keel::plugin-api installed
#   KEEL_MODULE_DIR               default output root: ${CMAKE_BINARY_DIR}/lib/keel
#   KEEL_WARNINGS                 compile options: -Wall -Wextra if unset
#   KEEL_MODULE_INSTALL_DIR       if set, install() puts the module in <prefix>/<it>/<kind> (keel searches
#                                 <prefix>/lib/keel and ~/.local/lib/keel); NO_INSTALL skips it
#   KEEL_MODULE_INSTALL_COMPONENT the install component (default: the project's default component)
if(COMMAND keel_add_module)
  return()
endif()

function(keel_add_module name)
  cmake_parse_arguments(M "NO_INDEX;NO_INSTALL" "KIND;OUTPUT_DIRECTORY" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT M_KIND MATCHES "^(device|accel|machine|block)$")
    message(FATAL_ERROR "keel_add_module(${name}): KIND must be device, accel, machine or block, not '${M_KIND}'")
  endif()
  if(NOT M_SOURCES)
    message(FATAL_ERROR "keel_add_module(${name}): no SOURCES")
  endif()
  set(api ${KEEL_PLUGIN_API_TARGET})
  if(NOT api)
    set(api keel-plugin-api)
  endif()
  set(root ${KEEL_MODULE_DIR})
  if(NOT root)
    set(root ${CMAKE_BINARY_DIR}/lib/keel)
  endif()
  set(warnings ${KEEL_WARNINGS})
  if(NOT DEFINED KEEL_WARNINGS)
    set(warnings -Wall -Wextra)
  endif()
  if(NOT M_OUTPUT_DIRECTORY)
    set(M_OUTPUT_DIRECTORY ${root}/${M_KIND})
  endif()
  set(target keel-${M_KIND}-${name})
  add_library(${target} MODULE ${M_SOURCES})
  target_link_libraries(${target} PRIVATE ${api} ${M_LIBRARIES})
  target_compile_options(${target} PRIVATE ${warnings})
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
  if(KEEL_MODULE_INSTALL_DIR AND NOT M_NO_INSTALL AND NOT M_NO_INDEX)
    set(component)
    if(KEEL_MODULE_INSTALL_COMPONENT)
      set(component COMPONENT ${KEEL_MODULE_INSTALL_COMPONENT})
    endif()
    install(TARGETS ${target} LIBRARY DESTINATION ${KEEL_MODULE_INSTALL_DIR}/${M_KIND} ${component})
  endif()
endfunction()
