#include "scoring/path_attribution.h"

#include <cmath>

#include <boost/json.hpp>

namespace reai::scoring {
namespace json = boost::json;
namespace {

const json::array* array_of(const json::object& o, std::string_view key, std::size_t n) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_array() || v->get_array().size() != n) return nullptr;
  return &v->get_array();
}

bool number(const json::value& v, double* out) {
  if (!v.is_number()) return false;
  *out = v.to_number<double>();
  return std::isfinite(*out);
}

}  // namespace

Result<PathAttributor> PathAttributor::build(const std::string& model_json, std::size_t num_features) {
  boost::system::error_code ec;
  json::value root = json::parse(model_json, ec);
  if (ec) return invalid_argument("model JSON: " + ec.message());
  const json::value* trees = nullptr;
  if (root.is_object()) {
    const auto* learner = root.get_object().if_contains("learner");
    if (learner && learner->is_object()) {
      const auto* gb = learner->get_object().if_contains("gradient_booster");
      if (gb && gb->is_object()) {
        const auto* model = gb->get_object().if_contains("model");
        if (model && model->is_object()) trees = model->get_object().if_contains("trees");
      }
    }
  }
  if (!trees || !trees->is_array()) return invalid_argument("model JSON: no trees");
  PathAttributor pa;
  pa.num_features_ = num_features;
  for (const json::value& tv : trees->get_array()) {
    if (!tv.is_object()) return invalid_argument("model JSON: tree is not an object");
    const auto& t = tv.get_object();
    const json::value* lv = t.if_contains("left_children");
    if (!lv || !lv->is_array() || lv->get_array().empty()) return invalid_argument("model JSON: bad tree");
    const std::size_t n = lv->get_array().size();
    const auto* right = array_of(t, "right_children", n);
    const auto* feat = array_of(t, "split_indices", n);
    const auto* cond = array_of(t, "split_conditions", n);
    const auto* defl = array_of(t, "default_left", n);
    const auto* hess = array_of(t, "sum_hessian", n);
    if (!right || !feat || !cond || !defl || !hess) return invalid_argument("model JSON: bad tree arrays");
    const std::int32_t offset = static_cast<std::int32_t>(pa.nodes_.size());
    std::vector<double> cover(n), expected(n);
    for (std::size_t i = 0; i < n; ++i) {
      double l, r, f, c, d, h;
      if (!number(lv->get_array()[i], &l) || !number((*right)[i], &r) || !number((*feat)[i], &f) ||
          !number((*cond)[i], &c) || !number((*defl)[i], &d) || !number((*hess)[i], &h)) {
        return invalid_argument("model JSON: non-numeric tree field");
      }
      Node node{};
      cover[i] = h;
      if (l < 0) {
        node.feature = -1;
        node.left = node.right = node.missing = -1;
        expected[i] = c;
      } else {
        // Children after parents (XGBoost's numbering) rules out cycles.
        if (!(l > double(i) && l < double(n) && r > double(i) && r < double(n)) || !(f >= 0 && f < double(num_features))) {
          return invalid_argument("model JSON: tree structure out of range");
        }
        node.feature = static_cast<std::int32_t>(f);
        node.left = offset + static_cast<std::int32_t>(l);
        node.right = offset + static_cast<std::int32_t>(r);
        node.missing = d != 0 ? node.left : node.right;
        node.threshold = static_cast<float>(c);
      }
      pa.nodes_.push_back(node);
    }
    // Expected values bottom-up (children have larger indices).
    for (std::size_t k = n; k-- > 0;) {
      Node& node = pa.nodes_[offset + k];
      if (node.feature < 0) continue;
      const std::size_t li = std::size_t(node.left - offset), ri = std::size_t(node.right - offset);
      const double cl = cover[li], cr = cover[ri];
      const double el = expected[li], er = expected[ri];
      expected[k] = cl + cr > 0 ? (cl * el + cr * er) / (cl + cr) : 0.5 * (el + er);
    }
    for (std::size_t k = 0; k < n; ++k) pa.nodes_[offset + k].expected = static_cast<float>(expected[k]);
    pa.roots_.push_back(offset);
  }
  return pa;
}

void PathAttributor::contributions(const float* row, std::span<double> out) const {
  contributions_and_leaf_sum(row, out);
}

double PathAttributor::contributions_and_leaf_sum(const float* row, std::span<double> out) const {
  double leaves = 0;
  for (std::int32_t root : roots_) {
    const Node* node = &nodes_[root];
    out[num_features_] += node->expected;
    while (node->feature >= 0) {
      const float v = row[node->feature];
      const std::int32_t next = std::isnan(v) ? node->missing : (v < node->threshold ? node->left : node->right);
      const Node* child = &nodes_[next];
      out[node->feature] += double(child->expected) - double(node->expected);
      node = child;
    }
    leaves += node->expected;
  }
  return leaves;
}

}  // namespace reai::scoring
