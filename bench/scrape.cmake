# The scrape benchmark (issue 16): procsup's CPU per GET /metrics with 1,000 instances. Not Google
# Benchmark: it measures another process (the real procsup), from /proc/PID/stat.
if(PROCSUP_BUILD_DAEMON)
  add_executable(bench_scrape ${CMAKE_CURRENT_LIST_DIR}/bench_scrape.cpp)
  target_include_directories(bench_scrape PRIVATE ${procsup_bench_include})
  procsup_set_warnings(bench_scrape)
  add_dependencies(bench_scrape procsup_bin)
endif()
if(PROCSUP_BUILD_DAEMON)
  add_executable(bench_metrics_render ${CMAKE_CURRENT_LIST_DIR}/bench_metrics_render.cpp)
  target_link_libraries(bench_metrics_render PRIVATE procsup_daemon_lib benchmark::benchmark)
  procsup_set_warnings(bench_metrics_render)
  target_compile_options(bench_metrics_render PRIVATE -Wno-null-dereference)
endif()
