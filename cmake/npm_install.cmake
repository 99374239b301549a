# ctest fixture shared by the tests that drive npm packages (the server
# tests: the OpenAI Node SDK, playwright-core; the tokenizer tests: the
# Hugging Face reference tokenizer): installs the pinned PACKAGES into
# PREFIX, a build-tree folder never committed, and skips the download when
# the pinned versions are already there.
#   cmake -DPREFIX=dir "-DPACKAGES=name@version;..." -P npm_install.cmake
find_program(NPM npm)
find_program(NODE node)
if(NOT NPM OR NOT NODE)
  message(FATAL_ERROR "node and npm are required to install ${PACKAGES} for the tests "
                      "(scripts/install-deps.sh installs them)")
endif()
set(missing "")
foreach(spec IN LISTS PACKAGES)
  string(REGEX MATCH "^(.+)@([^@]+)$" _ "${spec}")
  set(manifest "${PREFIX}/node_modules/${CMAKE_MATCH_1}/package.json")
  set(want "${CMAKE_MATCH_2}")
  set(have "")
  if(EXISTS "${manifest}")
    file(READ "${manifest}" text)
    string(JSON have ERROR_VARIABLE err GET "${text}" version)
  endif()
  if(NOT have STREQUAL want)
    list(APPEND missing "${spec}")
  endif()
endforeach()
if(missing)
  file(MAKE_DIRECTORY "${PREFIX}")
  execute_process(
    COMMAND "${NPM}" install --prefix "${PREFIX}" --no-save --no-package-lock --no-audit --no-fund ${PACKAGES}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "npm install ${PACKAGES} into ${PREFIX} failed (exit ${rc}); is the npm registry reachable?")
  endif()
endif()
message(STATUS "npm packages ready in ${PREFIX}: ${PACKAGES}")
