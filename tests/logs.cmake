# Child logs (issue 5): rotation and tail units; black-box `procsup run` tests of rotation under a
# flood, `ctl logs -n` and `ctl logs -f`.
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  procsup_add_test(test_logs_rotation SOURCES unit/test_logs_rotation.cpp
    LIBS procsup_daemon_lib TIMEOUT 60 LABELS unit)
  procsup_add_test(test_logs_daemon SOURCES integration/test_logs_daemon.cpp
    LIBS procsup_daemon_lib TIMEOUT 600 LABELS integration)
  target_compile_definitions(test_logs_daemon PRIVATE PROCSUP_BINARY="$<TARGET_FILE:procsup_bin>")
  add_dependencies(test_logs_daemon procsup_bin)
  procsup_use_test_target(test_logs_daemon)
endif()
