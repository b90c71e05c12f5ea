# One function per BPF object: compile with clang -target bpf, then `bpftool gen skeleton`.
#
# No vmlinux.h: the programs only touch UAPI context structs (bpf_sock_addr, bpf_sock_ops,
# __sk_buff) and packet headers, which the kernel rewrites/keeps stable across versions, so the
# object does not depend on the build machine's kernel. See docs/datapath.md.
find_program(CLANG clang REQUIRED)
find_program(BPFTOOL bpftool REQUIRED)

execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch OUTPUT_VARIABLE PODID_MULTIARCH
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT PODID_MULTIARCH)
  set(PODID_MULTIARCH x86_64-linux-gnu)
endif()

function(podid_bpf_object name source)
  set(obj ${CMAKE_BINARY_DIR}/bpf/${name}.bpf.o)
  set(skel ${CMAKE_BINARY_DIR}/bpf/${name}.skel.h)
  file(GLOB bpf_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/*.h ${CMAKE_SOURCE_DIR}/include/podid/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/bpf
    COMMAND ${CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/bpf -I/usr/include/${PODID_MULTIARCH}
            -c ${source} -o ${obj}
    DEPENDS ${source} ${bpf_headers}
    COMMENT "BPF ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_bpf_gen DEPENDS ${skel})
  add_library(${name}_bpf_skel INTERFACE)
  add_dependencies(${name}_bpf_skel ${name}_bpf_gen)
  target_include_directories(${name}_bpf_skel INTERFACE ${CMAKE_BINARY_DIR}/bpf)
endfunction()
