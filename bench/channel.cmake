# The channel benchmark (issue 2 section 5): channel vs pipe, socketpair and Boost message_queue.
find_package(Boost 1.81 REQUIRED)  # header-only Boost.Interprocess, a baseline only
add_executable(bench_channel ${CMAKE_CURRENT_LIST_DIR}/bench_channel.cpp)
target_link_libraries(bench_channel PRIVATE procsup::ipc benchmark::benchmark Boost::headers Threads::Threads rt)
target_include_directories(bench_channel PRIVATE ${procsup_bench_include})
procsup_set_warnings(bench_channel)
