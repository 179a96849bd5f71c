# Black-box tests of the real `procsup` program against hostile or broken input (issue 14):
# control-socket clients that flood, never read, half-close or sit idle; config files that are
# not files, strings with NULs. Run just these: ctest -R "control_abuse|config_input"
if(NOT PROCSUP_FUZZ AND PROCSUP_BUILD_DAEMON)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  # name, ctest TIMEOUT per test (an abuse lasts until procsup's 10 s idle timeout ends it)
  foreach(spec control_abuse:120 config_input:90)
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
endif()
