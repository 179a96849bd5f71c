# The examples (examples/) as tests: each exits 0 only when it has shown what it should.
if(NOT PROCSUP_FUZZ AND TARGET counter)
  foreach(name counter order_processor chat_room worker_pool supervision_strategies)
    add_test(NAME example_${name} COMMAND ${name})
    set_tests_properties(example_${name} PROPERTIES TIMEOUT 60 LABELS "example")
  endforeach()
endif()
