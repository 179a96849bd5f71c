# The supervisor benchmark (issue 3): restart latency, round trips and pipelined throughput
# through a supervised process, spawn / stop of many children, idle CPU, a 200 MB parent; each
# against a bare baseline (fork+waitpid, socketpair, the raw channel) in the same run.
add_executable(bench_supervisor ${CMAKE_CURRENT_LIST_DIR}/bench_supervisor.cpp)
target_link_libraries(bench_supervisor PRIVATE procsup::procsup benchmark::benchmark Threads::Threads)
target_include_directories(bench_supervisor PRIVATE ${procsup_bench_include})
procsup_set_warnings(bench_supervisor)
