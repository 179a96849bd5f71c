// Shared by the importers (import.cpp: Procfile and the public functions; import_supervisord.cpp):
// TOML text output and names. Private to procsup_daemon_lib.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "procsup/daemon/import.hpp"

namespace procsup::daemon::import_detail {

std::string trim(std::string_view s);
std::string lower(std::string s);
// A TOML basic string / array of strings.
std::string toml_string(std::string_view s);
std::string toml_array(const std::vector<std::string>& items);
// A comment line's text: one line, whatever the value held.
std::string one_line(std::string_view s);
// procsup program names are 1-64 of A-Z a-z 0-9 _ - . ; anything else becomes '_' (one per
// UTF-8 character), and a name already in `taken` gets a -2, -3 ... suffix.
std::string program_name_from(std::string_view raw, std::set<std::string>& taken);

// The supervisord importer (import_supervisord.cpp).
import_result import_supervisord(const std::vector<import_file>& files);

}  // namespace procsup::daemon::import_detail
