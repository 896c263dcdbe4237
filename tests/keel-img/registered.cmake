# SPDX-License-Identifier: MIT
# Fails when keel_img_test.py has a test that CMakeLists.txt does not register (or the other way round).
execute_process(COMMAND ${PYTHON} ${SCRIPT} --list OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "keel_img_test.py --list failed")
endif()
string(STRIP "${_out}" _out)
string(REPLACE "\n" ";" _listed "${_out}")
list(SORT _listed)
set(_expected ${EXPECTED})
list(SORT _expected)
if(NOT _listed STREQUAL _expected)
  message(FATAL_ERROR "tests in keel_img_test.py: ${_listed}\nregistered in CMakeLists.txt: ${_expected}")
endif()
