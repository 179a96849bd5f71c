# The black-box child program every test may launch: procsup_test_target (its modes are listed
# at the top of tests/helpers/target.cpp). A test gets its path with procsup_use_test_target().
# Other tests/*.cmake files that need the function before this file's turn include it first.
include_guard(GLOBAL)

add_executable(procsup_test_target ${CMAKE_CURRENT_LIST_DIR}/helpers/target.cpp)
procsup_set_warnings(procsup_test_target)

# procsup_use_test_target(TARGET): compiles PROCSUP_TEST_TARGET="<path of the helper>" into the
# test executable TARGET and builds the helper first.
function(procsup_use_test_target target)
  target_compile_definitions(${target} PRIVATE PROCSUP_TEST_TARGET="$<TARGET_FILE:procsup_test_target>")
  add_dependencies(${target} procsup_test_target)
endfunction()

# procsup_add_daemon_test(NAME SOURCE [TIMEOUT s] [LABEL unit|integration] [BINARY]
#                         [INCLUDE_PRIVATE]): a test of the daemon's parts, linked with
# procsup_daemon_lib (default TIMEOUT 30, LABEL unit). BINARY: it also runs the built procsup
# (PROCSUP_BINARY). INCLUDE_PRIVATE: it includes daemon/src's private headers.
function(procsup_add_daemon_test name)
  cmake_parse_arguments(ARG "BINARY;INCLUDE_PRIVATE" "SOURCE;TIMEOUT;LABEL" "" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 30)
  endif()
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  procsup_add_test(${name} SOURCES ${ARG_SOURCE} LIBS procsup_daemon_lib TIMEOUT ${ARG_TIMEOUT} LABELS ${ARG_LABEL})
  if(ARG_BINARY)
    procsup_use_procsup_binary(${name})
  endif()
  if(ARG_INCLUDE_PRIVATE)
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/daemon/src)
  endif()
endfunction()

# procsup_use_procsup_binary(TARGET): compiles PROCSUP_BINARY="<path of procsup>" into TARGET
# and builds procsup (and its demo programs) first.
function(procsup_use_procsup_binary target)
  target_compile_definitions(${target} PRIVATE PROCSUP_BINARY="$<TARGET_FILE:procsup_bin>")
  add_dependencies(${target} procsup_bin)
endfunction()

# procsup_add_program_test(WHAT [TIMEOUT s] [LABELS ...] [PROTOCOL_WORKER] [NO_TEST_TARGET]
#                          [DAEMON_LIB] [SOURCE file]): a black-box test of the built procsup,
# tests/integration/test_program_WHAT.cpp (or SOURCE) as test_program_WHAT (or WHAT itself with
# SOURCE). It gets PROCSUP_BINARY and PROCSUP_TEST_TARGET (unless NO_TEST_TARGET);
# PROTOCOL_WORKER: also PROCSUP_PROTOCOL_WORKER (tests/helpers/protocol_worker.cpp, reload.cmake);
# DAEMON_LIB: links procsup_daemon_lib. Default TIMEOUT 90, LABELS integration.
function(procsup_add_program_test what)
  cmake_parse_arguments(ARG "PROTOCOL_WORKER;NO_TEST_TARGET;DAEMON_LIB" "TIMEOUT;SOURCE" "LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 90)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS integration)
  endif()
  if(ARG_SOURCE)
    set(name ${what})
  else()
    set(name test_program_${what})
    set(ARG_SOURCE integration/test_program_${what}.cpp)
  endif()
  set(libs nlohmann_json::nlohmann_json)
  if(ARG_DAEMON_LIB)
    list(APPEND libs procsup_daemon_lib)
  endif()
  procsup_add_test(${name} SOURCES ${ARG_SOURCE} LIBS ${libs} TIMEOUT ${ARG_TIMEOUT} LABELS ${ARG_LABELS})
  procsup_use_procsup_binary(${name})
  if(NOT ARG_NO_TEST_TARGET)
    procsup_use_test_target(${name})
  endif()
  if(ARG_PROTOCOL_WORKER)
    target_compile_definitions(${name} PRIVATE PROCSUP_PROTOCOL_WORKER="$<TARGET_FILE:procsup_protocol_worker>")
    add_dependencies(${name} procsup_protocol_worker)
  endif()
  # gcc 12 -O2 reports false "potential null pointer dereference" inside nlohmann/json.hpp.
  target_compile_options(${name} PRIVATE -Wno-null-dereference)
endfunction()
