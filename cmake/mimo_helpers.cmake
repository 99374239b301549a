# mimo_add_test(NAME SOURCES a.cc b.cc LIBS lib1 lib2 [LABELS l] [SERIAL test1 test2])
# Builds one GTest executable and registers its tests with ctest. SERIAL
# names tests (Suite.Name) that measure timing between the engine's own
# threads: ctest runs them alone (RUN_SERIAL), since a test next to them on a
# 2-core machine leaves their threads one core.
include(GoogleTest)
function(mimo_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS;SERIAL" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    MIMOSERVE_FIXTURES_DIR="${MIMOSERVE_FIXTURES_DIR}"
    MIMOSERVE_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    MIMOSERVE_BINARY_DIR="${CMAKE_BINARY_DIR}")
  if(T_SERIAL)
    list(JOIN T_SERIAL ":" serial_filter)
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 TEST_FILTER "-${serial_filter}" PROPERTIES LABELS "${T_LABELS}")
    foreach(t ${T_SERIAL})
      add_test(NAME ${t} COMMAND ${name} --gtest_filter=${t})
      # Exactly this one test must run and pass (a renamed test fails here
      # rather than selecting nothing).
      set_tests_properties(${t} PROPERTIES RUN_SERIAL TRUE LABELS "${T_LABELS}"
                           PASS_REGULAR_EXPRESSION "\\[  PASSED  \\] 1 test\\."
                           FAIL_REGULAR_EXPRESSION "FAILED")
    endforeach()
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
