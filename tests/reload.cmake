# Live reload and protocol workers of the procsup program (issue 5): black-box tests on the real
# binary, with the test protocol worker (tests/helpers/protocol_worker.cpp).
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  add_executable(procsup_protocol_worker ${CMAKE_CURRENT_LIST_DIR}/helpers/protocol_worker.cpp)
  target_link_libraries(procsup_protocol_worker PRIVATE procsup::worker nlohmann_json::nlohmann_json)
  procsup_set_warnings(procsup_protocol_worker)

  foreach(t test_reload_daemon test_protocol_daemon)
    procsup_add_test(${t} SOURCES integration/${t}.cpp
      LIBS procsup_daemon_lib nlohmann_json::nlohmann_json TIMEOUT 90 LABELS integration)
    target_compile_definitions(${t} PRIVATE PROCSUP_BINARY="$<TARGET_FILE:procsup_bin>"
      PROCSUP_PROTOCOL_WORKER="$<TARGET_FILE:procsup_protocol_worker>")
    add_dependencies(${t} procsup_bin procsup_protocol_worker)
  endforeach()
endif()
