# The launcher (supervisor/src/launcher.cpp) against real children.
if(NOT PROCSUP_FUZZ)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  procsup_add_test(test_launcher_child SOURCES integration/test_launcher_child.cpp
    LIBS procsup::supervisor TIMEOUT 60 LABELS integration)
  procsup_use_test_target(test_launcher_child)
endif()
