# What `podid-agent --version` reports besides the project version: the git commit and the build type.
#
# The image's build context has no .git (deploy/Containerfile.dockerignore leaves it out), so the commit comes in
# as -DPODID_GIT_COMMIT=<sha> (the Containerfile's PODID_GIT_COMMIT build argument). A build from a checkout
# leaves it empty and asks git at configure time; tools/build.sh configures on every run, so the commit follows
# the checkout. Neither: "unknown".
set(PODID_GIT_COMMIT "" CACHE STRING "Commit podid-agent --version reports (empty: git rev-parse HEAD of the source tree)")
if(PODID_GIT_COMMIT)
  set(PODID_COMMIT "${PODID_GIT_COMMIT}")
else()
  execute_process(COMMAND git -C "${CMAKE_SOURCE_DIR}" rev-parse HEAD OUTPUT_VARIABLE PODID_COMMIT
                  RESULT_VARIABLE podid_git_rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT podid_git_rc EQUAL 0 OR NOT PODID_COMMIT)
    set(PODID_COMMIT unknown)
  endif()
endif()

# podid_version_info(<source>): the definitions main() prints, on that one file only, so a new commit recompiles
# one file.
function(podid_version_info source)
  set_property(SOURCE ${source} APPEND PROPERTY COMPILE_DEFINITIONS PODID_GIT_COMMIT_STR="${PODID_COMMIT}"
                                                                     PODID_BUILD_TYPE_STR="${CMAKE_BUILD_TYPE}")
endfunction()
