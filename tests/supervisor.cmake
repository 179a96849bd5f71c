# supervisor/ tests: processes, supervisors, strategies, failures (real forks).
if(NOT PROCSUP_FUZZ)
  file(GLOB procsup_supervisor_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_supervisor_*.cpp)
  foreach(src ${procsup_supervisor_tests})
    get_filename_component(name ${src} NAME_WE)
    procsup_add_test(${name} SOURCES ${src} LIBS procsup::procsup TIMEOUT 120)
  endforeach()
endif()
