# Unity builds of the multi-file libraries (CI time). Most of a TU's compile time here is parsing and
# instantiating Asio, Beast and nlohmann/json, the same in every file of a library; compiling 8 files as one
# pays for that once per batch. The single-file test executables gain nothing and keep their own TUs.
#
# In a batch each .cpp is an included file, and GCC's -Wsubobject-linkage (meant for headers) then flags every
# class or coroutine frame holding a type from the file's anonymous namespace; it stays on in the normal TUs.
option(PODID_UNITY_BUILD "Compile podid_core, the emulator, podidctl and the test support in batches" ON)
set(PODID_UNITY_BATCH_SIZE 8 CACHE STRING "Files per unity batch (PODID_UNITY_BUILD)")

# podid_unity(<target>...): turns on the unity build for the listed targets (call after they are defined).
function(podid_unity)
  if(NOT PODID_UNITY_BUILD)
    return()
  endif()
  foreach(t ${ARGN})
    set_target_properties(${t} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${PODID_UNITY_BATCH_SIZE})
    target_compile_options(${t} PRIVATE $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-subobject-linkage>)
  endforeach()
  # datapath.cpp and guard.cpp each define their own errno_error(); they stay apart.
  set_source_files_properties(${CMAKE_SOURCE_DIR}/agent/datapath/guard.cpp DIRECTORY ${CMAKE_SOURCE_DIR}/agent
                              PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
endfunction()
