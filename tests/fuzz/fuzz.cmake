# Fuzz targets (tests/fuzz), included from tests/rpc/CMakeLists.txt.
#  - Always: fuzz_corpus_test, a guarded test running every target over tests/fuzz/corpus/.
#  - With NETLAYER_FUZZ=ON and clang: one libFuzzer binary per target (tests/fuzz/run.sh builds
#    and runs them; compile everything with -fsanitize=...,fuzzer-no-link there).
include_guard(GLOBAL)
set(NETLAYER_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
add_library(netlayer_fuzz_targets STATIC
  ${NETLAYER_FUZZ_DIR}/smac_decoder_fuzz.cc
  ${NETLAYER_FUZZ_DIR}/envelope_fuzz.cc
  ${NETLAYER_FUZZ_DIR}/handshake_fuzz.cc
  ${NETLAYER_FUZZ_DIR}/session_fuzz.cc
  ${NETLAYER_FUZZ_DIR}/tls_fuzz.cc)
target_include_directories(netlayer_fuzz_targets PUBLIC ${NETLAYER_FUZZ_DIR})
target_link_libraries(netlayer_fuzz_targets PUBLIC netlayer::rpc netlayer::smac netlayer::tls
                      netlayer_test_support)

netlayer_guarded_test(NAME fuzz_corpus_test
  SOURCES ${NETLAYER_FUZZ_DIR}/fuzz_corpus_test.cc
  LIBS netlayer_fuzz_targets
  LABELS "rpc;smac;tls;fuzz")
target_compile_definitions(fuzz_corpus_test PRIVATE
  NETLAYER_FUZZ_CORPUS_DIR="${NETLAYER_FUZZ_DIR}/corpus")

if(NETLAYER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "NETLAYER_FUZZ=ON needs clang (CXX=clang++); see tests/fuzz/run.sh")
  endif()
  foreach(pair "smac_decoder_fuzz:FuzzSmacDecoder" "envelope_fuzz:FuzzEnvelope"
               "handshake_fuzz:FuzzHandshake" "session_fuzz:FuzzSession" "tls_fuzz:FuzzTls")
    string(REPLACE ":" ";" parts ${pair})
    list(GET parts 0 name)
    list(GET parts 1 entry)
    add_executable(${name} ${NETLAYER_FUZZ_DIR}/fuzz_main.cc)
    target_compile_definitions(${name} PRIVATE NETLAYER_FUZZ_ENTRY=${entry})
    target_link_libraries(${name} PRIVATE netlayer_fuzz_targets)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  endforeach()
endif()
