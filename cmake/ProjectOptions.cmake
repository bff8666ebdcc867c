# Compiler settings live on INTERFACE targets that real targets link, never in global flags.

add_library(mnist_warnings INTERFACE)
add_library(mnist::warnings ALIAS mnist_warnings)
target_compile_options(mnist_warnings INTERFACE
  -Wall                 # the usual suspects
  -Wextra               # unused parameters, sign/enum mistakes, missing initialisers
  -Wshadow              # a local hiding a member or outer variable
  -Wnon-virtual-dtor    # polymorphic classes deleted through a base pointer
  -Wold-style-cast      # casts that say what they mean
  -Wcast-align          # casts that break alignment on stricter targets
  -Wunused              # dead variables and functions
  -Woverloaded-virtual  # overloads that hide a base's virtual function
  -Wpedantic            # non-standard extensions
  -Wnull-dereference    # paths the compiler proves dereference null
  -Wimplicit-fallthrough # switch cases that run into each other
)
if(MNIST_WARNINGS_AS_ERRORS)
  target_compile_options(mnist_warnings INTERFACE -Werror)
endif()

# Shared by every target that includes <torch/torch.h>: one precompiled header, built once (REUSE_FROM).
# A translation unit including torch costs ~30 s on these machines without it.
function(mnist_reuse_torch_pch target)
  target_precompile_headers(${target} REUSE_FROM mnist_core)
endfunction()

# Sanitizers and fuzzing (tests/fuzz/): a separate build folder with clang, for example
#   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DMNIST_SANITIZE=ON -DMNIST_FUZZ=ON
# (scripts/test_sanitize.sh). These flags are global on purpose: every translation unit, the
# precompiled header included, must be built the same way. LibTorch and OpenCV are not instrumented,
# but the memory the project touches through them is checked all the same.
option(MNIST_SANITIZE "Build everything with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(MNIST_FUZZ "Build the libFuzzer harnesses (clang; instruments the code for coverage)" OFF)
if(MNIST_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(MNIST_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "MNIST_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
