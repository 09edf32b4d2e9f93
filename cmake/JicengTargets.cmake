# Shared compile settings for Jiceng's own targets (never applied directory-wide).
function(jiceng_target_options target)
  # -Wmaybe-uninitialized is off: g++ 12 reports false positives through std::optional and
  # std::variant (GCC bug 105562 and friends) at -O2.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers
                                           -Wno-maybe-uninitialized)
  if(JICENG_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/src)
endfunction()

if(JICENG_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# jiceng_add_test(NAME name SOURCES a.cpp b.cpp LIBS lib1 lib2): a GoogleTest binary labelled "unit".
function(jiceng_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  jiceng_target_options(${T_NAME})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest_main GTest::gmock)
  target_compile_definitions(${T_NAME} PRIVATE
    JICENG_SHARED_DIR="${JICENG_SHARED_DIR}"
    JICENG_DEFINITIONS_DIR="${JICENG_DEFINITIONS_DIR}")
  # One label per test: gtest_discover_tests flattens a label list into property names.
  gtest_discover_tests(${T_NAME} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
endfunction()
