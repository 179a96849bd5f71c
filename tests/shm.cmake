# shm/ tests: the ring's layout, operations, model test, fork stress, crash and corruption.
set(procsup_shm_tests ${CMAKE_CURRENT_LIST_DIR})
if(NOT PROCSUP_FUZZ)
  procsup_add_test(test_shm_ring SOURCES ${procsup_shm_tests}/unit/test_shm_ring.cpp ${procsup_shm_tests}/unit/test_shm_ring_layout.cpp
    ${procsup_shm_tests}/unit/test_shm_process_guard.cpp LIBS procsup::shm TIMEOUT 60)
  procsup_add_test(test_shm_ring_fork SOURCES ${procsup_shm_tests}/integration/test_shm_ring_fork.cpp
    LIBS procsup::shm TIMEOUT 120 LABELS integration)
  procsup_add_test(test_shm_ring_fault
    SOURCES ${procsup_shm_tests}/fault/test_shm_ring_kill.cpp ${procsup_shm_tests}/fault/test_shm_ring_corruption.cpp
    LIBS procsup::shm TIMEOUT 120 LABELS fault)
endif()
