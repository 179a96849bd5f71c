# [supervisor] http (issue 16): black-box tests of the endpoints on the real binary, a real
# Prometheus scraping procsup (label `slow`), unit tests of the metrics text, and the
# Kubernetes example (deploy/kubernetes) against the config it ships.
# Run just these: ctest -R "http|prometheus|metrics|kubernetes"
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  foreach(spec http:120 prometheus:240)
    string(REPLACE ":" ";" spec ${spec})
    list(GET spec 0 what)
    list(GET spec 1 timeout)
    set(labels integration)
    if(what STREQUAL "prometheus")
      set(labels integration slow)
    endif()
    procsup_add_test(test_program_${what} SOURCES integration/test_program_${what}.cpp
      LIBS nlohmann_json::nlohmann_json TIMEOUT ${timeout} LABELS ${labels})
    target_compile_definitions(test_program_${what} PRIVATE PROCSUP_BINARY="$<TARGET_FILE:procsup_bin>"
      PROCSUP_PROTOCOL_WORKER="$<TARGET_FILE:procsup_protocol_worker>")
    add_dependencies(test_program_${what} procsup_bin procsup_protocol_worker)
    procsup_use_test_target(test_program_${what})
    target_compile_options(test_program_${what} PRIVATE -Wno-null-dereference)
  endforeach()

  procsup_add_test(test_daemon_metrics SOURCES unit/test_daemon_metrics.cpp LIBS procsup_daemon_lib LABELS unit)
  target_compile_options(test_daemon_metrics PRIVATE -Wno-null-dereference)
endif()
