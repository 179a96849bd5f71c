# Live reload and protocol workers of the procsup program (issue 5): black-box tests on the real
# binary, with the test protocol worker (tests/helpers/protocol_worker.cpp).
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  add_executable(procsup_protocol_worker ${CMAKE_CURRENT_LIST_DIR}/helpers/protocol_worker.cpp)
  target_link_libraries(procsup_protocol_worker PRIVATE procsup::worker nlohmann_json::nlohmann_json)
  procsup_set_warnings(procsup_protocol_worker)

  foreach(t test_reload_daemon test_protocol_daemon)
    procsup_add_program_test(${t} SOURCE integration/${t}.cpp PROTOCOL_WORKER DAEMON_LIB NO_TEST_TARGET)
  endforeach()
endif()
