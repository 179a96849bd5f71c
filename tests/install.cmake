# `cmake --install` into a temporary prefix, then build and run a separate project that finds
# procsup with find_package(procsup) and links procsup::procsup.
if(NOT PROCSUP_FUZZ AND NOT PROCSUP_SANITIZE)
  add_test(NAME install_and_find_package
    COMMAND ${CMAKE_COMMAND}
      -DBUILD_DIR=${PROJECT_BINARY_DIR}
      -DSOURCE_DIR=${PROJECT_SOURCE_DIR}/tests/consumer
      -DWORK_DIR=${PROJECT_BINARY_DIR}/consumer-test
      -P ${PROJECT_SOURCE_DIR}/tests/consumer/run.cmake)
  set_tests_properties(install_and_find_package PROPERTIES TIMEOUT 300 LABELS "install")
endif()
