# The procsup program's parts (daemon/): config, control socket, sd_notify, the command table;
# black-box CLI tests. procsup_add_daemon_test: tests/helpers.cmake.
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  foreach(t config logging import dependency_graph)
    procsup_add_daemon_test(test_daemon_${t} SOURCE unit/test_daemon_${t}.cpp)
  endforeach()
  procsup_add_daemon_test(test_daemon_commands SOURCE unit/test_daemon_commands.cpp INCLUDE_PRIVATE)
  foreach(t notify control)
    procsup_add_daemon_test(test_daemon_${t} SOURCE integration/test_daemon_${t}.cpp LABEL integration)
  endforeach()
  procsup_add_daemon_test(test_daemon_check SOURCE integration/test_daemon_check.cpp LABEL integration
    TIMEOUT 60 BINARY)
endif()
