# reai_library(NAME SOURCES ... DEPS ...): one static library per module folder.
# The folder's public header is included as "<module>/<module>.h" from src/.
function(reai_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# reai_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with CTest.
# Tests run with the repo root as working directory so fixtures resolve, and
# see tests/ on their include path for the header-only helpers in
# tests/support (temp_dir.h, private_redis.h, ...).
function(reai_test name)
  cmake_parse_arguments(ARG "" "FIXTURES" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  include(GoogleTest)
  # Only non-empty properties: an empty LABELS value would shift the list.
  set(extra_properties)
  if(ARG_LABELS)
    list(APPEND extra_properties LABELS "${ARG_LABELS}")
  endif()
  if(ARG_FIXTURES)
    list(APPEND extra_properties FIXTURES_REQUIRED ${ARG_FIXTURES})
  endif()
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES ENVIRONMENT "REAI_BUILD_DIR=${PROJECT_BINARY_DIR}" ${extra_properties}
    DISCOVERY_TIMEOUT 60)
endfunction()

# reai_benchmark(NAME SOURCES ... DEPS ...): a Google Benchmark binary (run by `make bench`).
function(reai_benchmark name)
  if(NOT REAI_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark benchmark::benchmark_main)
  set_property(GLOBAL APPEND PROPERTY REAI_BENCHMARK_TARGETS ${name})
endfunction()
