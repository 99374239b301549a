# cmake -DMSG=... -P fail.cmake: a ctest entry that fails with MSG, standing
# in for a test whose prerequisite is missing.
message(FATAL_ERROR "${MSG}")
