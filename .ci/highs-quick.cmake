# CMake toolchain file used by .ci/run only (through the CMAKE_TOOLCHAIN_FILE environment
# variable, which the `cmake` crate passes on to HiGHS's build in highs-sys): HiGHS's C and
# C++ are compiled without optimisation. CI checks that the `highs` configuration builds and
# that the IP agrees with the branch-and-bound; it does not time HiGHS, and `-O0` compiles its
# 300 files in about 60 % of the CPU time of the `-O3` that highs-sys asks for (BENCHMARKS.md,
# "Cold CI"). A user's `--features highs` build is unaffected.
set(CMAKE_C_FLAGS_RELEASE "-O0 -DNDEBUG" CACHE STRING "")
set(CMAKE_CXX_FLAGS_RELEASE "-O0 -DNDEBUG" CACHE STRING "")
