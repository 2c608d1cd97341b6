#include "server/model_reloads.h"

#include <cstdio>
#include <future>
#include <memory>
#include <random>
#include <utility>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "core/tenant_id.h"

namespace reai::server {

namespace json = boost::json;

namespace {

std::string random_instance_id() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "inst-%08x%08x", rd(), rd());
  return buf;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out = "[";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out + "]";
}

}  // namespace

std::string encode_reload_notice(std::string_view origin) {
  return json::serialize(json::object{{"origin", origin}});
}

Result<std::string> decode_reload_notice(std::string_view payload) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) return invalid_argument("model_reload: not a JSON object");
  const json::value* origin = v.get_object().if_contains("origin");
  if (!origin || !origin->is_string() || origin->get_string().empty()) {
    return invalid_argument("model_reload: missing or mistyped origin");
  }
  return std::string(origin->get_string());
}

std::string describe_reload(const scoring::ModelReloadReport& report) {
  return "reloaded " + joined(report.reloaded) + " unchanged " + joined(report.unchanged) + " failed " +
         joined(report.failed);
}

ModelReloads::ModelReloads(bus::Bus& bus, scoring::DirectoryModelRegistry& registry,
                           RefreshProperty refresh_property)
    : bus_(bus),
      registry_(registry),
      refresh_property_(std::move(refresh_property)),
      instance_id_(random_instance_id()) {
  subscription_ = bus_.subscribe_notices([this](const bus::BusMessage& m) { on_notice(m); });
  subscribed_ = true;
}

ModelReloads::~ModelReloads() { stop(); }

void ModelReloads::stop() {
  if (subscribed_.exchange(false)) bus_.unsubscribe_notices(subscription_);
  worker_.stop();
}

bool ModelReloads::reload_tenant(std::string tenant_id, Done done) {
  return worker_.post("", [this, tenant_id = std::move(tenant_id), done = std::move(done)] {
    TenantReload r = reload_here(tenant_id);
    if (!r.models.status) {
      r.announced = failed_precondition("not announced: the reload failed here");
    } else {
      r.announced = bus_.notify(tenant_id, kModelReloadTopic,
                                std::make_shared<const std::string>(encode_reload_notice(instance_id_)));
      (r.announced ? announced_ : announce_failures_).fetch_add(1, std::memory_order_relaxed);
      // Handed over while the backend is down: held here, not yet heard by anyone.
      if (Status health = r.announced ? bus_.health() : Status::ok(); !health) {
        r.announced = unavailable("held until the bus is back (" + health.message() + ")");
      }
      if (!r.announced) {
        spdlog::warn("model reload of tenant {}: not announced to other instances: {}", tenant_id,
                     r.announced.to_string());
      }
    }
    done(std::move(r));
  });
}

ModelReloads::TenantReload ModelReloads::reload_here(const std::string& tenant_id) {
  TenantReload r;
  r.models = registry_.reload_tenant(tenant_id);
  if (refresh_property_) r.property = refresh_property_(tenant_id);
  return r;
}

void ModelReloads::on_notice(const bus::BusMessage& m) {
  if (m.topic != kModelReloadTopic) return;
  auto origin = m.payload ? decode_reload_notice(*m.payload) : Result<std::string>(invalid_argument("no payload"));
  Status tenant_ok = check_tenant_id(m.tenant_id);
  if (!origin || !tenant_ok) {
    ignored_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("model reload notice ignored: {}", (origin ? tenant_ok : origin.status()).to_string());
    return;
  }
  // The sender reloaded before it announced.
  if (*origin == instance_id_) {
    own_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  received_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    // One queued reload rereads whatever moved since the notices that asked.
    if (!queued_tenants_.insert(m.tenant_id).second) {
      coalesced_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  const std::string tenant_id = m.tenant_id;
  if (!worker_.post("", [this, tenant_id] { reload_for_notice(tenant_id); })) {
    std::lock_guard lock(mu_);
    queued_tenants_.erase(tenant_id);
  }
}

void ModelReloads::reload_for_notice(const std::string& tenant_id) {
  {
    std::lock_guard lock(mu_);
    queued_tenants_.erase(tenant_id);  // a notice from now on queues another reload
  }
  TenantReload r = reload_here(tenant_id);
  if (r.models.status) {
    spdlog::info("model reload of tenant {} announced by another instance: {}", tenant_id, describe_reload(r.models));
  } else {
    spdlog::warn("model reload of tenant {} announced by another instance: {}; {}", tenant_id,
                 describe_reload(r.models), r.models.status.to_string());
  }
}

void ModelReloads::reload_all() {
  {
    std::lock_guard lock(mu_);
    if (std::exchange(full_queued_, true)) return;  // the one waiting reads everything anyway
  }
  if (!worker_.post("", [this] { run_full_reload(); })) {
    std::lock_guard lock(mu_);
    full_queued_ = false;
  }
}

void ModelReloads::run_full_reload() {
  {
    std::lock_guard lock(mu_);
    full_queued_ = false;
  }
  spdlog::info("model reload of every tenant (SIGHUP) from {}", registry_.model_dir());
  const scoring::ModelReloadReport report = registry_.reload_all();
  full_reloads_.fetch_add(1, std::memory_order_relaxed);
  if (report.status) {
    spdlog::info("model reload of every tenant: {}", describe_reload(report));
  } else {
    // What failed keeps serving its previous version (or the fallback).
    spdlog::warn("model reload of every tenant: {}; {}", describe_reload(report), report.status.to_string());
  }
}

void ModelReloads::wait_idle() {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  if (!worker_.post("", [done] { done->set_value(); })) return;
  future.wait();
}

ModelReloadStats ModelReloads::stats() const {
  ModelReloadStats s;
  s.announced = announced_.load(std::memory_order_relaxed);
  s.announce_failures = announce_failures_.load(std::memory_order_relaxed);
  s.received = received_.load(std::memory_order_relaxed);
  s.coalesced = coalesced_.load(std::memory_order_relaxed);
  s.own = own_.load(std::memory_order_relaxed);
  s.ignored = ignored_.load(std::memory_order_relaxed);
  s.full_reloads = full_reloads_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace reai::server
