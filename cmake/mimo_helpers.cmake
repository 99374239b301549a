# mimo_add_test(NAME SOURCES a.cc b.cc LIBS lib1 lib2 [LABELS l])
# Builds one GTest executable and registers its tests with ctest.
include(GoogleTest)
function(mimo_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    MIMOSERVE_FIXTURES_DIR="${MIMOSERVE_FIXTURES_DIR}"
    MIMOSERVE_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    MIMOSERVE_BINARY_DIR="${CMAKE_BINARY_DIR}")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABELS}")
endfunction()
