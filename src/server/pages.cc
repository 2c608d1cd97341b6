// The built-in page (until the dashboard lands) and static file serving.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "server/api.h"

namespace reai::server {
namespace fs = std::filesystem;
namespace {

std::string content_type_for(const fs::path& p) {
  const std::string ext = p.extension().string();
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "application/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".woff2") return "font/woff2";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace

bool static_dir_usable(const std::string& static_dir) {
  if (static_dir.empty()) return false;
  std::error_code ec;
  return fs::is_regular_file(fs::path(static_dir) / "index.html", ec);
}

Status check_static_dir(const std::string& static_dir) {
  if (static_dir.empty()) return Status::ok();
  std::error_code ec;
  if (!fs::is_directory(static_dir, ec)) {
    return invalid_argument("static dir '" + static_dir + "' is not a directory (build the dashboard: make build)");
  }
  if (!static_dir_usable(static_dir)) {
    return invalid_argument("static dir '" + static_dir + "' has no index.html (build the dashboard: make build)");
  }
  return Status::ok();
}

std::optional<StaticFile> read_static_file(const std::string& static_dir, std::string_view url_path) {
  if (url_path.empty() || url_path.front() != '/') return std::nullopt;
  if (url_path.find('\0') != std::string_view::npos || url_path.find('\\') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string relative(url_path.substr(1));
  if (relative.empty()) relative = "index.html";
  // No segment may climb: reject before touching the file system.
  for (const auto& part : fs::path(relative)) {
    if (part == "..") return std::nullopt;
  }
  std::error_code ec;
  const fs::path root = fs::canonical(static_dir, ec);
  if (ec) return std::nullopt;
  fs::path file = fs::weakly_canonical(root / relative, ec);
  if (ec) return std::nullopt;
  // Symlinks may still point outside the root.
  const auto [root_end, file_it] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
  if (root_end != root.end()) return std::nullopt;
  if (fs::is_directory(file, ec)) file /= "index.html";
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream body;
  body << in.rdbuf();
  StaticFile out;
  out.body = std::move(body).str();
  out.content_type = content_type_for(file);
  // Vite puts content-hashed files under assets/: a new build gets new names,
  // so they never change and may be cached for good. index.html names the
  // current ones and must be revalidated on every load.
  if (file.filename() == "index.html") {
    out.cache_control = "no-cache";
  } else if (relative.rfind("assets/", 0) == 0) {
    out.cache_control = "public, max-age=31536000, immutable";
  } else {
    out.cache_control = "public, max-age=3600";
  }
  return out;
}

std::string_view builtin_index_html() {
  return R"(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>reai - hot leads</title>
<script src="/app.js" defer></script>
</head>
<body>
<h1>Hot leads</h1>
<p id="status">Open this page as /#token=YOUR_JWT</p>
<table>
<thead><tr><th>Lead</th><th>Score</th><th>Band</th><th>Top reason</th><th>Model</th><th>Scored at</th></tr></thead>
<tbody id="leads"></tbody>
</table>
</body>
</html>
)";
}

std::string_view builtin_app_js() {
  return R"JS('use strict';
(function () {
  var match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem('reai_token', decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  var token = sessionStorage.getItem('reai_token');
  var statusEl = document.getElementById('status');
  var body = document.getElementById('leads');
  var leads = new Map();
  var lastSeq = 0;
  if (!token) return;
  var tenant = '';
  try { var claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))); tenant = claims.tenant || claims.tenant_id || ''; } catch (e) {}

  function render() {
    var rows = Array.from(leads.values()).filter(function (s) { return s.band === 'hot'; });
    rows.sort(function (a, b) { return b.probability - a.probability; });
    body.textContent = '';
    rows.forEach(function (s) {
      var tr = document.createElement('tr');
      [s.lead_id, String(s.score), s.band, s.reasons && s.reasons[0] ? s.reasons[0].text : '', s.model, s.scored_at]
        .forEach(function (v) { var td = document.createElement('td'); td.textContent = v; tr.appendChild(td); });
      body.appendChild(tr);
    });
  }
  function load() {
    return fetch('/api/leads?band=hot&limit=50', { headers: { Authorization: 'Bearer ' + token } })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.error) { statusEl.textContent = j.error; return; }
        leads.clear();
        j.leads.forEach(function (s) { leads.set(s.lead_id, s); });
        render();
      });
  }
  function connect() {
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var url = proto + '//' + location.host + '/api/realtime/scoring/' + encodeURIComponent(tenant) +
      '?token=' + encodeURIComponent(token) + (lastSeq ? '&since=' + lastSeq : '');
    var ws = new WebSocket(url);
    ws.onopen = function () { statusEl.textContent = 'live'; };
    ws.onmessage = function (m) {
      var msg = JSON.parse(m.data);
      if (msg.type === 'resync') { load(); return; }
      if (msg.type !== 'score_update') return;
      lastSeq = msg.seq;
      if (msg.band === 'hot') leads.set(msg.lead_id, msg); else leads.delete(msg.lead_id);
      render();
    };
    ws.onclose = function (e) {
      statusEl.textContent = 'disconnected (' + e.code + ')';
      if (e.code !== 4001 && e.code !== 4003) setTimeout(connect, 2000);
    };
  }
  load().then(connect);
})();
)JS";
}

}  // namespace reai::server
