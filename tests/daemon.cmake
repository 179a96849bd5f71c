# The procsup program's parts (daemon/): config, control socket, sd_notify; black-box CLI tests.
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  procsup_add_test(test_daemon_config SOURCES unit/test_daemon_config.cpp
    LIBS procsup_daemon_lib TIMEOUT 30 LABELS unit)
  procsup_add_test(test_daemon_dependency_graph SOURCES unit/test_daemon_dependency_graph.cpp
    LIBS procsup_daemon_lib TIMEOUT 60 LABELS unit)
  procsup_add_test(test_daemon_logging SOURCES unit/test_daemon_logging.cpp
    LIBS procsup_daemon_lib TIMEOUT 30 LABELS unit)
  procsup_add_test(test_daemon_import SOURCES unit/test_daemon_import.cpp
    LIBS procsup_daemon_lib TIMEOUT 30 LABELS unit)
  procsup_add_test(test_daemon_notify SOURCES integration/test_daemon_notify.cpp
    LIBS procsup_daemon_lib TIMEOUT 30 LABELS integration)
  procsup_add_test(test_daemon_control SOURCES integration/test_daemon_control.cpp
    LIBS procsup_daemon_lib TIMEOUT 30 LABELS integration)
  procsup_add_test(test_daemon_check SOURCES integration/test_daemon_check.cpp
    LIBS procsup_daemon_lib TIMEOUT 60 LABELS integration)
  target_compile_definitions(test_daemon_check PRIVATE PROCSUP_BINARY="$<TARGET_FILE:procsup_bin>")
  add_dependencies(test_daemon_check procsup_bin)
endif()
