# supervisor/ tests: processes, supervisors, strategies, failures (real forks), and the fault
# tests (fork refused with EAGAIN). One executable per file; every test has a TIMEOUT.
if(NOT PROCSUP_FUZZ)
  include(${CMAKE_CURRENT_LIST_DIR}/helpers.cmake)
  include(${CMAKE_CURRENT_LIST_DIR}/supervisor_helpers.cmake)
  file(GLOB procsup_supervisor_tests CONFIGURE_DEPENDS
    ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_supervisor_*.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_supervisor_*.cpp)
  foreach(src ${procsup_supervisor_tests})
    get_filename_component(name ${src} NAME_WE)
    procsup_add_test(${name} SOURCES ${src} LIBS procsup::procsup TIMEOUT 120)
    procsup_use_test_target(${name})
    procsup_use_supervisor_helpers(${name})
  endforeach()
endif()
