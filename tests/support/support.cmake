# The in-memory FakeWorld (an Env with a virtual clock, in-memory connection pairs, a fake client
# factory) shared by the smac and rpc unit tests. Included from tests/smac and tests/rpc.
include_guard(GLOBAL)
add_library(netlayer_test_support STATIC ${CMAKE_CURRENT_LIST_DIR}/fake_world.cc)
target_include_directories(netlayer_test_support PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(netlayer_test_support PUBLIC netlayer::core)
