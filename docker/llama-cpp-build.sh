# Sourced before llama-cpp-python is compiled (`make venv`, the images' build stage without a wheelhouse).
#
# llama.cpp builds for the machine it is built on (-march=native). Where the CPU reports AMX but the
# kernel or hypervisor does not enable it (seen in Firecracker guests), its AMX matrix kernels stop the
# process with a general protection fault at the first prompt; the AVX-512 and AVX2 kernels serve
# the same models. A CMAKE_ARGS of the caller's own takes precedence.
: "${CMAKE_ARGS:=-DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'}"
export CMAKE_ARGS
