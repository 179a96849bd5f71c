# The restart decision without a fork (restart_governor, backoff_policy): examples and seeded
# random failure sequences against a reference model. Run just these: ctest -R governor
if(NOT PROCSUP_FUZZ)
  procsup_add_test(test_supervisor_restart_governor SOURCES unit/test_supervisor_restart_governor.cpp
    LIBS procsup::supervisor TIMEOUT 60 LABELS unit)
endif()
# The unit's transition table (detail/unit_phase.hpp), fork-free: ctest -R unit_phase
if(NOT PROCSUP_FUZZ)
  procsup_add_test(test_supervisor_unit_phase SOURCES unit/test_supervisor_unit_phase.cpp
    LIBS procsup::supervisor TIMEOUT 60 LABELS unit)
endif()
