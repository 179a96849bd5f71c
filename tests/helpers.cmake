# The black-box child program every test may launch: procsup_test_target (its modes are listed
# at the top of tests/helpers/target.cpp). A test gets its path with procsup_use_test_target().
# Other tests/*.cmake files that need the function before this file's turn include it first.
include_guard(GLOBAL)

add_executable(procsup_test_target ${CMAKE_CURRENT_LIST_DIR}/helpers/target.cpp)
procsup_set_warnings(procsup_test_target)

# procsup_use_test_target(TARGET): compiles PROCSUP_TEST_TARGET="<path of the helper>" into the
# test executable TARGET and builds the helper first.
function(procsup_use_test_target target)
  target_compile_definitions(${target} PRIVATE PROCSUP_TEST_TARGET="$<TARGET_FILE:procsup_test_target>")
  add_dependencies(${target} procsup_test_target)
endfunction()
