// Read routes the dashboard needs beyond scoring: a contact's attributes,
// its events, and the tenant's score distribution. Tenant-scoped: the tenant
// always comes from the verified token. Private to src/server; owned by Api.
#pragma once

#include <string_view>

#include "server/api.h"
#include "server/lead_board.h"

namespace reai::server {

class DashboardRoutes {
 public:
  // Both must outlive this object. Thread-safe as the store and engine are.
  DashboardRoutes(store::Store& store, scoring::LeadScoringEngine& engine) : store_(store), engine_(engine) {}

  // GET /api/contacts/{id}: the contact's stored attributes; 404 when the
  // tenant has no such contact.
  ApiResponse contact(const TokenClaims& claims, std::string_view contact_id);
  // GET /api/contacts/{id}/events?limit=200: newest first, limit 1..1000;
  // 400 for a bad limit, 404 for an unknown contact.
  ApiResponse events(const TokenClaims& claims, std::string_view contact_id, std::string_view query);
  // GET /api/leads/distribution: current scores of every lead counted by
  // band, by source x band, and in ten score bins by band. With a board
  // (several instances, use_board) the cluster's newest published scores, so
  // every instance answers the same; otherwise this engine's.
  ApiResponse distribution(const TokenClaims& claims);
  // `board` (may be null) must outlive this object; call before serving.
  void use_board(const LeadBoard* board) { board_ = board; }

 private:
  store::Store& store_;
  scoring::LeadScoringEngine& engine_;
  const LeadBoard* board_ = nullptr;
};

}  // namespace reai::server
