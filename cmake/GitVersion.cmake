# Generates build_info.cpp with the git commit of the sources, refreshed on every build (the file is only
# rewritten when the commit changes, so nothing recompiles needlessly). Run folders record it in meta.json.

set(MNIST_BUILD_INFO_CPP ${CMAKE_BINARY_DIR}/generated/build_info.cpp)
add_custom_target(mnist_git_version
  COMMAND ${CMAKE_COMMAND}
    -DSOURCE_DIR=${CMAKE_SOURCE_DIR}
    -DOUTPUT=${MNIST_BUILD_INFO_CPP}
    -DPROJECT_VERSION=${PROJECT_VERSION}
    -P ${CMAKE_SOURCE_DIR}/cmake/WriteBuildInfo.cmake
  BYPRODUCTS ${MNIST_BUILD_INFO_CPP}
  COMMENT "Recording git commit"
  VERBATIM)
# Once now, so that the file exists when targets are generated.
execute_process(COMMAND ${CMAKE_COMMAND}
  -DSOURCE_DIR=${CMAKE_SOURCE_DIR} -DOUTPUT=${MNIST_BUILD_INFO_CPP} -DPROJECT_VERSION=${PROJECT_VERSION}
  -P ${CMAKE_SOURCE_DIR}/cmake/WriteBuildInfo.cmake)
