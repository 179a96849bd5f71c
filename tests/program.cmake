# Black-box tests of the real `procsup` program (tests/integration/test_program_*.cpp): each test
# starts the built procsup binary on a temporary config and socket, drives it with signals and
# `procsup ctl`, and watches its log (tests/helpers/program_harness.hpp). The binaries under test
# reach the tests as PROCSUP_BINARY and PROCSUP_TEST_TARGET and are built first
# (procsup_add_program_test: tests/helpers.cmake).
# Run just these: ctest -R program_
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  # ctest TIMEOUT per test: generous (the machine may be loaded, ASan is slow)
  foreach(what restart stop pid1 config child_env ctl notify cli logs import)
    procsup_add_program_test(${what})
  endforeach()
  procsup_add_program_test(containment TIMEOUT 120)
  procsup_add_program_test(services TIMEOUT 180)
  # `procsup import` reads real-world configs from tests/data (see tests/data/supervisor/README.md).
  target_compile_definitions(test_program_import PRIVATE PROCSUP_TEST_DATA="${CMAKE_CURRENT_LIST_DIR}/data")
  target_compile_definitions(test_program_cli PRIVATE
    PROCSUP_COMPLETION="${PROJECT_SOURCE_DIR}/daemon/completion/procsup.bash")
endif()
