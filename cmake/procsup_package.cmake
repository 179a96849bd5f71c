# Debian packages with CPack: `cpack -G DEB` in the build directory (tests/install.cmake checks
# what they hold). Two packages:
#   procsup      /usr/bin/procsup, /usr/lib/systemd/system/procsup.service, the man page, bash
#                completion, the docs, and the demo programs in /usr/libexec/procsup
#   procsup-dev  the library: headers, static libraries, find_package(procsup) files
set(CPACK_PACKAGE_NAME procsup)
set(CPACK_PACKAGE_VENDOR "procsup")
set(CPACK_PACKAGE_CONTACT "procsup maintainers <procsup@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Erlang-style supervision of OS processes")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)  # the build's -g stays in the build tree, not in the package
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL program dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PROGRAM_PACKAGE_NAME procsup)
# (CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY first; these are the lines after it.)
set(CPACK_DEBIAN_PROGRAM_DESCRIPTION
  "procsup runs and restarts programs from a TOML config (restart strategies,\nbackoff, restart intensity, process groups, privilege drop, rotated output\nfiles), with a control socket (procsup ctl), sd_notify and PID 1 duties.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME procsup-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "nlohmann-json3-dev, libspdlog-dev, libfmt-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "The C++ library: supervisors, forked behaviors, shared-memory channels.\nHeaders, static libraries and CMake package files (find_package(procsup)).")
# Depends from the binaries' shared libraries (dpkg-shlibdeps, package dpkg-dev).
find_program(PROCSUP_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(PROCSUP_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PROGRAM_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PROGRAM_PACKAGE_DEPENDS "libc6, libstdc++6, libspdlog1.10, libfmt9, libtomlplusplus3")
endif()
include(CPack)
