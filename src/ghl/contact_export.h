// GHL's contact export (the CSV a user downloads from the Contacts table)
// read into reai contacts. Pure: text in, records out; any thread.
// Columns used (by name, any order; others ignored): "Contact Id" (required),
// "Created" (ISO 8601 or "YYYY-MM-DD HH:MM:SS", UTC), "Phone", "Email",
// "Source", "Tags" (comma-joined; "buyer"/"seller"/"investor" set the lead
// type), "Assigned To".
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace reai::ghl {

struct ContactExport {
  std::vector<Contact> contacts;
  std::vector<std::string> skipped;  // "line N: why", for rows left out
};

// InvalidArgument when the text has no "Contact Id" column or is not CSV.
// A row without an id or with an unreadable date is skipped and reported;
// a repeated id keeps the last row.
Result<ContactExport> parse_contact_export(std::string text, const std::string& tenant_id);

}  // namespace reai::ghl
