# Issue 20: per-program failure budgets, essential programs and container exit codes,
# exit_when, the program environment (env files, ${VAR}, {instance}, passwd variables),
# autostart. Unit tests of the pure parts, and black-box tests of the real binary.
# Run just these: ctest -R 'lifecycle|restart_window|exit_policy|daemon_environment'
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  procsup_add_test(test_daemon_environment SOURCES unit/test_daemon_environment.cpp
    LIBS procsup_daemon_lib TIMEOUT 30 LABELS unit)
  procsup_add_test(test_daemon_lifecycle SOURCES unit/test_daemon_lifecycle.cpp
    LIBS procsup_daemon_lib TIMEOUT 30 LABELS unit)
  procsup_add_test(test_program_lifecycle SOURCES integration/test_program_lifecycle.cpp
    LIBS nlohmann_json::nlohmann_json TIMEOUT 120 LABELS integration)
  target_compile_definitions(test_program_lifecycle PRIVATE PROCSUP_BINARY="$<TARGET_FILE:procsup_bin>"
    PROCSUP_DOCS_DIR="${PROJECT_SOURCE_DIR}/docs")
  add_dependencies(test_program_lifecycle procsup_bin)
  procsup_use_test_target(test_program_lifecycle)
  target_compile_options(test_program_lifecycle PRIVATE -Wno-null-dereference)  # as tests/program.cmake
endif()
