# Small helpers shared by every part: warnings and sanitizers.

function(procsup_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough)
endfunction()

if(PROCSUP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# procsup_add_library(part SOURCES ... DEPS ...): static library procsup_<part>, alias procsup::<part>.
function(procsup_add_library part)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(procsup_${part} STATIC ${ARG_SOURCES})
  add_library(procsup::${part} ALIAS procsup_${part})
  set_target_properties(procsup_${part} PROPERTIES EXPORT_NAME ${part} OUTPUT_NAME procsup_${part})
  target_include_directories(procsup_${part} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(procsup_${part} PUBLIC ${ARG_DEPS})
  procsup_set_warnings(procsup_${part})
endfunction()
