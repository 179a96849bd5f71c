// Moved to the sys target (procsup/sys/unique_fd.hpp): kept so that existing includes build.
// New code includes procsup/sys/unique_fd.hpp (and links procsup::sys) directly.
#pragma once

#include "procsup/sys/unique_fd.hpp"
