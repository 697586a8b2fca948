# native/cuda/cuda.cmake — the CUDA backend plugin salt_cuda.so (included by the top-level
# CMakeLists.txt after the salt_core target exists).
#
# Built only when nvcc, the CUDA toolkit, cublas_v2.h / cusolverDn.h and the cuBLAS / cuSOLVER
# libraries are found; otherwise a STATUS message says what is missing and nothing CUDA is created
# (the CPU addon is built by node-gyp and never needs any of this).
#
# Cache variables:
#   SALT_CUDA                  ON  build the plugin when possible (OFF: never)
#   SALT_CUDA_REQUIRED         OFF fail the configuration instead of skipping (used by the CI check)
#   SALT_CUDA_ARCHITECTURES    "90-real;75-virtual": SASS for H100/H200 plus PTX that any GPU with
#                              compute capability >= 7.5 can JIT-compile (nvcc 13 supports sm_75+)
#   SALT_CUDA_EXTRA_INCLUDE    extra folder with cublas_v2.h / cusolverDn.h (e.g. headers unpacked by
#                              scripts/cuda-headers.sh); added with -isystem AFTER the toolkit's own
#                              include folder, so the toolkit's runtime headers win
#   SALT_CUDA_EXTRA_LIBDIR     extra folder with libcublas.so / libcusolver.so (e.g. the link stubs)
#   SALT_CUDA_OUTPUT_DIR       where salt_cuda.so goes; default build/Release next to the addon
#                              (the addon dlopens salt_cuda.so from its own folder)

option(SALT_CUDA "Build the CUDA backend plugin (salt_cuda.so) when CUDA is available" ON)
option(SALT_CUDA_REQUIRED "Fail instead of skipping when the CUDA plugin cannot be built" OFF)
set(SALT_CUDA_ARCHITECTURES "90-real;75-virtual" CACHE STRING "CUDA architectures of salt_cuda.so")
set(SALT_CUDA_EXTRA_INCLUDE "" CACHE PATH "Extra include folder holding cublas_v2.h and cusolverDn.h")
set(SALT_CUDA_EXTRA_LIBDIR "" CACHE PATH "Extra library folder holding libcublas.so and libcusolver.so")
set(SALT_CUDA_OUTPUT_DIR "${CMAKE_CURRENT_SOURCE_DIR}/build/Release" CACHE PATH "Output folder of salt_cuda.so")

function(salt_cuda_skip why)
  if(SALT_CUDA_REQUIRED)
    message(FATAL_ERROR "salt_cuda: cannot build the CUDA plugin: ${why}")
  endif()
  message(STATUS "salt_cuda: skipping the CUDA plugin: ${why}")
endfunction()

if(NOT SALT_CUDA)
  message(STATUS "salt_cuda: disabled (SALT_CUDA=OFF)")
  return()
endif()

include(CheckLanguage)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # Must be set before the compiler is tested: nvcc 13 rejects CMake 3.25's default (sm_52).
  set(CMAKE_CUDA_ARCHITECTURES ${SALT_CUDA_ARCHITECTURES})
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  salt_cuda_skip("no CUDA compiler (nvcc) found; set CMAKE_CUDA_COMPILER or put nvcc on PATH")
  return()
endif()

find_package(CUDAToolkit QUIET)
if(NOT CUDAToolkit_FOUND)
  salt_cuda_skip("the CUDA toolkit was not found")
  return()
endif()

# CMake 3.25 defines CUDA::cublas even when the header is missing, so look for the headers and the
# libraries ourselves.
# (Searched afresh on every configure so a changed SALT_CUDA_EXTRA_* takes effect; NO_CACHE would need
# CMake 3.21.)
foreach(item SALT_CUBLAS_INCLUDE SALT_CUSOLVER_INCLUDE SALT_CUBLAS_LIB SALT_CUSOLVER_LIB)
  unset(${item} CACHE)
endforeach()
find_path(SALT_CUBLAS_INCLUDE cublas_v2.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${SALT_CUDA_EXTRA_INCLUDE})
find_path(SALT_CUSOLVER_INCLUDE cusolverDn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${SALT_CUDA_EXTRA_INCLUDE})
find_library(SALT_CUBLAS_LIB cublas HINTS ${CUDAToolkit_LIBRARY_DIR} ${SALT_CUDA_EXTRA_LIBDIR})
find_library(SALT_CUSOLVER_LIB cusolver HINTS ${CUDAToolkit_LIBRARY_DIR} ${SALT_CUDA_EXTRA_LIBDIR})
foreach(item SALT_CUBLAS_INCLUDE SALT_CUSOLVER_INCLUDE SALT_CUBLAS_LIB SALT_CUSOLVER_LIB)
  if(NOT ${item})
    salt_cuda_skip("${item} not found (cuBLAS/cuSOLVER headers and libraries are needed; set SALT_CUDA_EXTRA_INCLUDE / SALT_CUDA_EXTRA_LIBDIR, or run scripts/cuda-compile-check.sh for a compile-only check)")
    return()
  endif()
endforeach()

enable_language(CUDA)
if(NOT TARGET salt_core)
  salt_cuda_skip("the salt_core target must be defined before native/cuda/cuda.cmake is included")
  return()
endif()

string(REPLACE ";" ", " SALT_CUDA_ARCHS_TEXT "${CMAKE_CUDA_ARCHITECTURES}")
add_library(salt_cuda MODULE
  native/cuda/cuda_common.cu
  native/cuda/topk.cu
  native/cuda/sparsemax.cu
  native/cuda/solve.cu
  native/cuda/plugin.cpp)
set_target_properties(salt_cuda PROPERTIES
  PREFIX ""
  OUTPUT_NAME salt_cuda
  SUFFIX ".so"
  # $<1:...> keeps multi-config generators from appending a per-configuration subfolder.
  LIBRARY_OUTPUT_DIRECTORY "$<1:${SALT_CUDA_OUTPUT_DIR}>"
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
  CUDA_RUNTIME_LIBRARY Static
  CXX_VISIBILITY_PRESET hidden
  CUDA_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  POSITION_INDEPENDENT_CODE ON
  # A shipped plugin finds cuBLAS/cuSOLVER through the system's loader path, never through the
  # build machine's folders.
  SKIP_BUILD_RPATH ON
  INSTALL_RPATH "")
# The toolkit's own include folder first, then the extra (possibly older) cuBLAS/cuSOLVER headers.
target_include_directories(salt_cuda SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
if(SALT_CUDA_EXTRA_INCLUDE)
  target_include_directories(salt_cuda SYSTEM AFTER PRIVATE ${SALT_CUDA_EXTRA_INCLUDE})
endif()
target_compile_definitions(salt_cuda PRIVATE SALT_CUDA_ARCHS="${SALT_CUDA_ARCHS_TEXT}")
target_compile_options(salt_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)
target_link_libraries(salt_cuda PRIVATE salt_core ${SALT_CUSOLVER_LIB} ${SALT_CUBLAS_LIB} CUDA::cudart_static)
target_link_options(salt_cuda PRIVATE -Wl,--no-undefined -Wl,--exclude-libs,ALL -Wl,--as-needed
  "-Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/native/cuda/exports.map")
set_property(TARGET salt_cuda APPEND PROPERTY LINK_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/native/cuda/exports.map")
# Host tests of the code the kernels share with the host (no GPU needed; run by
# scripts/cuda-compile-check.sh): the eigen-solver and pseudo-inverse step (jacobi.h) against LAPACK
# and the CPU backend, the per-row top-k selection (select.h) against a plain sort, and the row
# sparsemax (sparsemax_row.h) against the CPU backend.
add_executable(salt_cuda_host_test EXCLUDE_FROM_ALL native/cuda/test/jacobi_host_test.cpp)
target_link_libraries(salt_cuda_host_test PRIVATE salt_core)
target_compile_options(salt_cuda_host_test PRIVATE -Wall -Wextra)
add_executable(salt_cuda_select_test EXCLUDE_FROM_ALL native/cuda/test/select_host_test.cpp)
target_compile_options(salt_cuda_select_test PRIVATE -Wall -Wextra)
add_executable(salt_cuda_sparsemax_test EXCLUDE_FROM_ALL native/cuda/test/sparsemax_host_test.cpp)
target_link_libraries(salt_cuda_sparsemax_test PRIVATE salt_core)
target_compile_options(salt_cuda_sparsemax_test PRIVATE -Wall -Wextra)

message(STATUS "salt_cuda: building ${SALT_CUDA_OUTPUT_DIR}/salt_cuda.so for ${SALT_CUDA_ARCHS_TEXT} (cuBLAS ${SALT_CUBLAS_LIB})")
