# [supervisor] http (issue 16): black-box tests of the endpoints on the real binary, a real
# Prometheus scraping procsup (label `slow`), unit tests of the metrics text, and the
# Kubernetes example (deploy/kubernetes) against the config it ships, and the toml blocks of docs/.
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

# deploy/kubernetes: the manifest against the config it ships (python3-yaml; tomllib: Python 3.11).
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  find_program(PROCSUP_SYSTEM_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
  add_test(NAME kubernetes.the_manifest_matches_the_config_it_ships_and_the_config_passes_check
    COMMAND ${PROCSUP_SYSTEM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/kubernetes/check_manifest.py
      ${PROJECT_SOURCE_DIR}/deploy/kubernetes/procsup.yaml ${PROJECT_SOURCE_DIR}/deploy/kubernetes/Containerfile
      $<TARGET_FILE:procsup_bin>)
  set_tests_properties(kubernetes.the_manifest_matches_the_config_it_ships_and_the_config_passes_check
    PROPERTIES TIMEOUT 60 LABELS integration)
endif()

# Every ```toml block under docs/ passes `procsup check` (new docs/*.md are picked up at configure).
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  file(GLOB procsup_docs_md CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
  add_test(NAME docs.every_toml_block_passes_procsup_check
    COMMAND ${PROCSUP_SYSTEM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/docs/check_toml_blocks.py $<TARGET_FILE:procsup_bin>
      ${procsup_docs_md})
  set_tests_properties(docs.every_toml_block_passes_procsup_check PROPERTIES TIMEOUT 60 LABELS integration)
endif()
