# SimNet (tests/support/sim_net.h): a calm two-host sim::World shared by the smac, rpc and tls unit
# tests and the fuzz targets. Included from tests/smac and tests/rpc.
include_guard(GLOBAL)
add_library(netlayer_test_support INTERFACE)
target_include_directories(netlayer_test_support INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(netlayer_test_support INTERFACE netlayer::core netlayer::sim)
