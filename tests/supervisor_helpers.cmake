# Helper programs of the supervisor tests: an exec'd worker binary linking the worker runtime
# (procsup_echo_worker) and the fork-EAGAIN probe (procsup_fork_eagain_probe). Included by
# tests/supervisor.cmake before it needs them.
include_guard(GLOBAL)

if(NOT PROCSUP_FUZZ)
  add_executable(procsup_echo_worker ${CMAKE_CURRENT_LIST_DIR}/helpers/echo_worker.cpp)
  target_link_libraries(procsup_echo_worker PRIVATE procsup::worker)
  procsup_set_warnings(procsup_echo_worker)

  add_executable(procsup_fork_eagain_probe ${CMAKE_CURRENT_LIST_DIR}/helpers/fork_eagain_probe.cpp)
  target_link_libraries(procsup_fork_eagain_probe PRIVATE procsup::procsup Threads::Threads)
  procsup_set_warnings(procsup_fork_eagain_probe)
endif()

# procsup_use_supervisor_helpers(TARGET): compiles the helpers' paths into TARGET
# (PROCSUP_ECHO_WORKER, PROCSUP_FORK_EAGAIN_PROBE) and builds them first.
function(procsup_use_supervisor_helpers target)
  target_compile_definitions(${target} PRIVATE
    PROCSUP_ECHO_WORKER="$<TARGET_FILE:procsup_echo_worker>"
    PROCSUP_FORK_EAGAIN_PROBE="$<TARGET_FILE:procsup_fork_eagain_probe>")
  add_dependencies(${target} procsup_echo_worker procsup_fork_eagain_probe)
endfunction()
