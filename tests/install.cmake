# `cmake --install` into a temporary prefix, check the program's files there (and run the
# installed demo: tests/consumer/check_install.cmake), then build and run a separate project
# that finds procsup with find_package(procsup) and links procsup::procsup.
if(NOT PROCSUP_FUZZ AND NOT PROCSUP_SANITIZE)
  add_test(NAME install_and_find_package
    COMMAND ${CMAKE_COMMAND}
      -DBUILD_DIR=${PROJECT_BINARY_DIR}
      -DSOURCE_DIR=${PROJECT_SOURCE_DIR}/tests/consumer
      -DWORK_DIR=${PROJECT_BINARY_DIR}/consumer-test
      -P ${PROJECT_SOURCE_DIR}/tests/consumer/run.cmake)
  set_tests_properties(install_and_find_package PROPERTIES TIMEOUT 300 LABELS "install")
endif()
# `cpack -G DEB`: the packages list the expected files (tests/consumer/package.cmake).
find_program(PROCSUP_DPKG_DEB dpkg-deb)
if(NOT PROCSUP_FUZZ AND NOT PROCSUP_SANITIZE AND PROCSUP_BUILD_DAEMON AND PROCSUP_DPKG_DEB)
  add_test(NAME deb_package_holds_the_program_unit_man_page_completion_and_docs
    COMMAND ${CMAKE_COMMAND}
      -DBUILD_DIR=${PROJECT_BINARY_DIR}
      -DWORK_DIR=${PROJECT_BINARY_DIR}/package-test
      -P ${PROJECT_SOURCE_DIR}/tests/consumer/package.cmake)
  set_tests_properties(deb_package_holds_the_program_unit_man_page_completion_and_docs PROPERTIES
    TIMEOUT 300 LABELS "install")
endif()
