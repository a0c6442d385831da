# Runs the guard_fires binary and passes only if it died with the guard's message.
execute_process(COMMAND ${BINARY} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "guard did not fire (exit 0): ${out}${err}")
endif()
if(NOT err MATCHES "netlayer guard: socket\\(\\) called")
  message(FATAL_ERROR "guard fired without its message (rc=${rc}): ${err}")
endif()
message(STATUS "guard fired as expected: ${err}")
