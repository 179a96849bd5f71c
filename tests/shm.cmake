# shm/ tests: the ring's layout, operations, model test, fork stress, crash and corruption; the
# wait primitive; the sys layer under shm (unique_fd, result, errno text, signal names).
set(procsup_shm_tests ${CMAKE_CURRENT_LIST_DIR})
if(NOT PROCSUP_FUZZ)
  procsup_add_test(test_shm_ring SOURCES ${procsup_shm_tests}/unit/test_shm_ring.cpp ${procsup_shm_tests}/unit/test_shm_ring_layout.cpp
    ${procsup_shm_tests}/unit/test_shm_process_guard.cpp ${procsup_shm_tests}/unit/test_shm_ring_batching.cpp
    LIBS procsup::shm TIMEOUT 60)
  procsup_add_test(test_shm_sys SOURCES ${procsup_shm_tests}/unit/test_shm_sys.cpp ${procsup_shm_tests}/unit/test_shm_wait.cpp
    LIBS procsup::shm procsup::sys Threads::Threads TIMEOUT 60)
  procsup_add_test(test_shm_ring_fork SOURCES ${procsup_shm_tests}/integration/test_shm_ring_fork.cpp
    LIBS procsup::shm TIMEOUT 120 LABELS integration)
  procsup_add_test(test_shm_region_pool SOURCES ${procsup_shm_tests}/integration/test_shm_region_pool.cpp
    LIBS procsup::shm TIMEOUT 60 LABELS integration)
  procsup_add_test(test_shm_ring_fault
    SOURCES ${procsup_shm_tests}/fault/test_shm_ring_kill.cpp ${procsup_shm_tests}/fault/test_shm_ring_corruption.cpp
    LIBS procsup::shm TIMEOUT 120 LABELS fault)
endif()

# The ring fuzz harness: a libFuzzer target in the fuzz build (clang, PROCSUP_FUZZ=ON); in the
# other builds a test that replays its seed corpus, and the generator of that corpus.
set(procsup_ring_fuzz_harness ${procsup_shm_tests}/fuzz/ring_fuzz_target.cpp)
if(PROCSUP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PROCSUP_FUZZ needs clang (libFuzzer); use the fuzz preset")
  endif()
  add_executable(fuzz_ring_reader ${procsup_shm_tests}/fuzz/fuzz_ring_reader.cpp ${procsup_ring_fuzz_harness})
  target_link_libraries(fuzz_ring_reader PRIVATE procsup::shm)
  target_compile_options(fuzz_ring_reader PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -O1)
  target_link_options(fuzz_ring_reader PRIVATE -fsanitize=fuzzer,address,undefined)
  procsup_set_warnings(fuzz_ring_reader)
else()
  procsup_add_test(test_shm_ring_corpus
    SOURCES ${procsup_shm_tests}/fuzz/test_shm_ring_corpus.cpp ${procsup_ring_fuzz_harness}
    LIBS procsup::shm TIMEOUT 60 LABELS fuzz)
  target_compile_definitions(test_shm_ring_corpus PRIVATE PROCSUP_RING_CORPUS_DIR="${procsup_shm_tests}/fuzz/corpus")
  add_executable(shm_ring_corpus_gen EXCLUDE_FROM_ALL ${procsup_shm_tests}/fuzz/make_ring_corpus.cpp ${procsup_ring_fuzz_harness})
  target_link_libraries(shm_ring_corpus_gen PRIVATE procsup::shm)
  procsup_set_warnings(shm_ring_corpus_gen)
endif()
