# ctest fixture: installs the pinned npm packages of the Hugging Face
# reference into PREFIX (a build-tree folder, never committed), skipping the
# download when the pinned versions are already there.
#   cmake -DPREFIX=dir "-DPACKAGES=name@version;..." -P npm_install.cmake
find_program(NPM npm)
find_program(NODE node)
if(NOT NPM OR NOT NODE)
  message(FATAL_ERROR "node and npm are required for the tokenizer reference tests "
                      "(apt-get install nodejs npm); they install ${PACKAGES} at test time")
endif()

set(need_install FALSE)
foreach(spec IN LISTS PACKAGES)
  string(REGEX MATCH "^(.+)@([^@]+)$" _ "${spec}")
  set(name "${CMAKE_MATCH_1}")
  set(version "${CMAKE_MATCH_2}")
  set(manifest "${PREFIX}/node_modules/${name}/package.json")
  if(EXISTS "${manifest}")
    file(READ "${manifest}" text)
    string(JSON have ERROR_VARIABLE err GET "${text}" version)
    if(NOT have STREQUAL version)
      set(need_install TRUE)
    endif()
  else()
    set(need_install TRUE)
  endif()
endforeach()

if(need_install)
  file(MAKE_DIRECTORY "${PREFIX}")
  execute_process(
    COMMAND "${NPM}" install --prefix "${PREFIX}" --no-save --no-package-lock --no-audit --no-fund ${PACKAGES}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "npm install ${PACKAGES} into ${PREFIX} failed (exit ${rc}); is the npm registry reachable?")
  endif()
endif()
message(STATUS "npm packages ready in ${PREFIX}: ${PACKAGES}")
