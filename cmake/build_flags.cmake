# Compile and link flags by build kind: sanitizer builds (tests/sanitize/run.sh), library types (shared objects in
# sanitizer builds), compressed debug sections, and the lighter flags for test-only code that keep CI in its budget.
#
# PODID_SANITIZE=address  ASan + UBSan, at -O0: GCC 12's UBSan instrumentation at -O1 doubles the compile
#                         time of the Asio/Beast coroutine code (57 s against 32 s for agent/kube/client.cpp),
#                         and the tests do not need the speed. A UBSan finding aborts (no recover), so a test
#                         that triggers one fails instead of printing and passing.
# PODID_SANITIZE=thread   TSan at -O1 (TSan's own recommendation; -O0 makes its runs several times slower).
# Both use line tables only (-g1): enough for the sanitizers' stack traces, much cheaper than -g.
# PODID_SANITIZER_BUILD is defined in both, for the few timing assertions that cannot hold under a sanitizer.
#
# The warnings switched off are GCC 12's under instrumentation, in headers we do not own: ASan makes it see
# Beast's boost::optional<size_t> content length as maybe-uninitialized; TSan warns (-Wtsan) that it cannot
# model the atomic_thread_fence in Asio's fenced blocks (Asio's scheduler mutex orders the handlers anyway).
set(PODID_SANITIZE "" CACHE STRING "Sanitizer build: address (ASan+UBSan) or thread (TSan); empty for none")
set_property(CACHE PODID_SANITIZE PROPERTY STRINGS "" address thread)
if(PODID_SANITIZE STREQUAL "address")
  set(podid_sanitize_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined)
  set(podid_sanitize_opt -O0)
  add_compile_options($<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-maybe-uninitialized>)
elseif(PODID_SANITIZE STREQUAL "thread")
  set(podid_sanitize_flags -fsanitize=thread)
  set(podid_sanitize_opt -O1)
  add_compile_options($<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-tsan>)
elseif(PODID_SANITIZE)
  message(FATAL_ERROR "PODID_SANITIZE must be address or thread, not '${PODID_SANITIZE}'")
endif()
if(PODID_SANITIZE)
  # Compile options come after CMAKE_CXX_FLAGS_<CONFIG> on the command line, so these replace its -O2 -g.
  add_compile_options($<$<COMPILE_LANGUAGE:C,CXX>:${podid_sanitize_opt}> $<$<COMPILE_LANGUAGE:C,CXX>:-g1>
                      ${podid_sanitize_flags} -fno-omit-frame-pointer)
  add_compile_definitions(PODID_SANITIZER_BUILD)
  add_link_options(${podid_sanitize_flags})
endif()

# Disk: every test executable links the agent's code. Statically, an ASan build's 35 test executables were
# 6.3 GB (175 MB each, -O0 code and ASan's global redzones) and a CI run needed 14 GB of disk; a CI run that
# started with 7 GB free failed mid-build. So sanitizer builds link the project's libraries as shared
# objects (one copy of the code), and the main build compresses its debug sections at link time with zstd
# (unit_token_cache_test 98 MB -> 22 MB; ~0.3 s per link). The main build keeps static libraries: podid-agent
# is shipped as one executable. Sanitizer builds do not compress: GCC 12's sanitizer symbolizer
# (libbacktrace) cannot read zstd sections, and their -g1 line tables are small; nor do fuzz builds
# (PODID_FUZZ): LLVM 14's symbolizer cannot either.
if(PODID_SANITIZE)
  set(PODID_LIBRARY_TYPE SHARED)
else()
  set(PODID_LIBRARY_TYPE STATIC)
endif()
if(NOT PODID_SANITIZE AND NOT PODID_FUZZ)
  include(CheckLinkerFlag)
  check_linker_flag(CXX "LINKER:--compress-debug-sections=zstd" PODID_LINKER_HAS_ZSTD)
  if(PODID_LINKER_HAS_ZSTD)
    add_link_options(LINKER:--compress-debug-sections=zstd)
  endif()
endif()

# Test-only code (the test executables, their support library, podid-probe and the demo, all defined in
# tests/CMakeLists.txt) is compiled at -O1 with line tables in optimised builds: it is about 60 % of the
# main build's compile time, and -O1 -g1 compiles it in ~55 % of the time of -O2 -g
# (tests/unit/kube_informer_test.cpp: 19 s against 34 s). The agent, the emulator, podidctl and the
# benchmarks (tests/bench) keep the build type's flags.
option(PODID_LIGHT_TEST_FLAGS "Compile test-only code at -O1 -g1 in optimised builds (CI time)" ON)
if(PODID_LIGHT_TEST_FLAGS AND NOT PODID_SANITIZE AND CMAKE_BUILD_TYPE MATCHES "^(RelWithDebInfo|Release)$")
  add_compile_options("$<$<AND:$<COMPILE_LANGUAGE:CXX>,$<STREQUAL:$<TARGET_PROPERTY:SOURCE_DIR>,${CMAKE_SOURCE_DIR}/tests>>:-O1;-g1>")
endif()
