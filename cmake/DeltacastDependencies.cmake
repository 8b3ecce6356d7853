# Every system dependency is looked up here, and a missing one stops the build
# with the Debian/Ubuntu package that provides it.
function(deltacast_require_package found what apt)
  if(NOT ${found})
    message(FATAL_ERROR
      "deltacast: ${what} was not found.\n"
      "  Install it with:  sudo apt-get install -y ${apt}\n"
      "  (or run: bash scripts/setup-system.sh, which installs everything deltacast needs)")
  endif()
endfunction()

find_package(Boost 1.71 QUIET)
deltacast_require_package(Boost_FOUND "Boost (headers, 1.71 or newer)" "libboost-dev")

find_package(RapidJSON QUIET)
if(NOT RapidJSON_FOUND)
  find_path(RAPIDJSON_INCLUDE_DIRS rapidjson/document.h)
  if(RAPIDJSON_INCLUDE_DIRS)
    set(RapidJSON_FOUND TRUE)
  endif()
endif()
deltacast_require_package(RapidJSON_FOUND "RapidJSON" "rapidjson-dev")
set(RAPIDJSON_INCLUDE_DIRS ${RAPIDJSON_INCLUDE_DIRS})

if(DELTACAST_BUILD_TESTS)
  find_package(GTest QUIET)
  deltacast_require_package(GTest_FOUND "GoogleTest" "libgtest-dev")
endif()
if(DELTACAST_BUILD_BENCHMARKS)
  find_package(benchmark QUIET)
  deltacast_require_package(benchmark_FOUND "Google Benchmark" "libbenchmark-dev")
endif()
