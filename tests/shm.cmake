# shm/ tests: the ring's layout, operations, model test, fork stress, crash and corruption.
if(NOT PROCSUP_FUZZ)
  procsup_add_test(test_shm_ring SOURCES unit/test_shm_ring.cpp LIBS procsup::shm)
endif()
