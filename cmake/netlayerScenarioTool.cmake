# netlayer_add_scenario_tool(NAME SOURCES src... [LIBS lib...]): an executable whose main() calls
# netlayer::sim::Main over the project's ScenarioRegistry (netlayer/sim/sim_main.h), linked with
# netlayer::sim_main; it gets every command of netlayer-sim (docs/SCENARIOS.md). `explore` works
# when netlayer was built and installed with preset `explore` (clang, libFuzzer); compile your
# own code with clang and -fsanitize=fuzzer-no-link too so its coverage guides the search
# (without it, explore is guided by netlayer's coverage and the probes only). Otherwise explore
# exits 2 saying what to install.
function(netlayer_add_scenario_tool name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "netlayer_add_scenario_tool(${name}): SOURCES (with main()) required")
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE netlayer::sim_main ${ARG_LIBS})
endfunction()
