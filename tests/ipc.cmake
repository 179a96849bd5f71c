# ipc/ tests: codecs, the channel in one process (layout, framing, attach validation), and the
# channel across real forks (ids in flight, epoll-driven parent, corrupt frames from a child).
if(NOT PROCSUP_FUZZ)
  procsup_add_test(test_ipc_codec SOURCES unit/test_ipc_codec.cpp LIBS procsup::ipc TIMEOUT 30)
  procsup_add_test(test_ipc_channel SOURCES unit/test_ipc_channel.cpp LIBS procsup::ipc TIMEOUT 30)
  procsup_add_test(test_ipc_channel_fork SOURCES integration/test_ipc_channel_fork.cpp LIBS procsup::ipc TIMEOUT 60)
endif()
