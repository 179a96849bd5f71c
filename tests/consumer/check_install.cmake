# After `cmake --install` into PREFIX (tests/consumer/run.cmake): the procsup program's files are
# where docs/cli.md says, the systemd unit names this prefix's bin/procsup, and the installed
# procsup finds the demo programs in libexec/procsup.
foreach(f bin/procsup libexec/procsup/procsup-demo-decoder libexec/procsup/procsup-demo-ticker
          libexec/procsup/procsup-demo-codec lib/systemd/system/procsup.service share/man/man1/procsup.1
          share/bash-completion/completions/procsup share/doc/procsup/README.md share/doc/procsup/docs/cli.md)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "not installed: ${PREFIX}/${f}")
  endif()
endforeach()
foreach(f bin/procsup-demo-decoder bin/procsup-demo-ticker bin/procsup-demo-codec)
  if(EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "the demo programs belong in libexec/procsup, not ${PREFIX}/${f}")
  endif()
endforeach()
file(READ ${PREFIX}/lib/systemd/system/procsup.service unit)
foreach(line "ExecStart=${PREFIX}/bin/procsup --log-format json run /etc/procsup/procsup.toml"
             "ExecStartPre=${PREFIX}/bin/procsup check /etc/procsup/procsup.toml"
             "Documentation=man:procsup(1) file://${PREFIX}/share/doc/procsup/README.md")
  string(FIND "${unit}" "${line}" at)
  if(at LESS 0)
    message(FATAL_ERROR "the installed unit lacks \"${line}\":\n${unit}")
  endif()
endforeach()
string(FIND "${unit}" "@" at)
if(at GREATER_EQUAL 0)
  message(FATAL_ERROR "the installed unit has an unsubstituted @VAR@:\n${unit}")
endif()
# The installed procsup runs the built-in demo from libexec/procsup (1 s, on a socket of its own).
execute_process(COMMAND ${CMAKE_COMMAND} -E env PROCSUP_DEMO_SOCKET=${PREFIX}/demo.sock
  ${PREFIX}/bin/procsup run --exit-after 1s
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 60)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the installed procsup's demo failed (${rc}):\n${out}")
endif()
string(FIND "${out}" "[ticker] spawned" at)
if(at LESS 0)
  message(FATAL_ERROR "the installed demo did not start its ticker:\n${out}")
endif()
execute_process(COMMAND ${PREFIX}/bin/procsup --version RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "^procsup [0-9]")
  message(FATAL_ERROR "procsup --version: ${rc} ${out}")
endif()
# The man page renders without a warning from groff (when groff is there to say).
find_program(PROCSUP_GROFF groff)
if(PROCSUP_GROFF)
  execute_process(COMMAND ${PROCSUP_GROFF} -man -Tutf8 -ww -z ${PREFIX}/share/man/man1/procsup.1
    RESULT_VARIABLE rc ERROR_VARIABLE warnings)
  if(rc OR NOT warnings STREQUAL "")
    message(FATAL_ERROR "groff on the installed man page: ${rc}\n${warnings}")
  endif()
endif()
