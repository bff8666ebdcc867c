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
