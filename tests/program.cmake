# Black-box tests of the real `procsup` program (tests/integration/test_program_*.cpp): each test
# starts the built procsup binary on a temporary config and socket, drives it with signals and
# `procsup ctl`, and watches its log (tests/helpers/program_harness.hpp). The binaries under test
# reach the tests as PROCSUP_BINARY and PROCSUP_TEST_TARGET and are built first.
# Run just these: ctest -R program_
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  # name, ctest TIMEOUT per test (generous: the machine may be loaded, ASan is slow)
  foreach(spec restart:90 stop:90 pid1:90 config:90 child_env:90 ctl:90 notify:90 containment:120 cli:90 logs:90
               import:90 services:180)
    string(REPLACE ":" ";" spec ${spec})
    list(GET spec 0 what)
    list(GET spec 1 timeout)
    procsup_add_test(test_program_${what} SOURCES integration/test_program_${what}.cpp
      LIBS nlohmann_json::nlohmann_json TIMEOUT ${timeout} LABELS integration)
    target_compile_definitions(test_program_${what} PRIVATE PROCSUP_BINARY="$<TARGET_FILE:procsup_bin>")
    add_dependencies(test_program_${what} procsup_bin)
    procsup_use_test_target(test_program_${what})
    # gcc 12 -O2 reports false "potential null pointer dereference" inside nlohmann/json.hpp.
    target_compile_options(test_program_${what} PRIVATE -Wno-null-dereference)
  endforeach()
  # `procsup import` reads real-world configs from tests/data (see tests/data/supervisor/README.md).
  target_compile_definitions(test_program_import PRIVATE PROCSUP_TEST_DATA="${CMAKE_CURRENT_LIST_DIR}/data")
  target_compile_definitions(test_program_cli PRIVATE
    PROCSUP_COMPLETION="${PROJECT_SOURCE_DIR}/daemon/completion/procsup.bash")
endif()
