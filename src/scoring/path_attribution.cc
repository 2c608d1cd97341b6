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

// learner.gradient_booster.model.trees, or nullptr when any step is missing.
const json::value* trees_of(const json::value& root) {
  if (!root.is_object()) return nullptr;
  const auto* learner = root.get_object().if_contains("learner");
  if (!learner || !learner->is_object()) return nullptr;
  const auto* gb = learner->get_object().if_contains("gradient_booster");
  if (!gb || !gb->is_object()) return nullptr;
  const auto* model = gb->get_object().if_contains("model");
  if (!model || !model->is_object()) return nullptr;
  return model->get_object().if_contains("trees");
}

// One tree's parallel per-node arrays, all of the same length.
struct TreeArrays {
  std::size_t size = 0;
  const json::array* left = nullptr;
  const json::array* right = nullptr;
  const json::array* feature = nullptr;
  const json::array* condition = nullptr;
  const json::array* default_left = nullptr;
  const json::array* hessian = nullptr;
};

Result<TreeArrays> tree_arrays(const json::value& tree) {
  if (!tree.is_object()) return invalid_argument("model JSON: tree is not an object");
  const auto& t = tree.get_object();
  const json::value* lv = t.if_contains("left_children");
  if (!lv || !lv->is_array() || lv->get_array().empty()) return invalid_argument("model JSON: bad tree");
  TreeArrays a;
  a.size = lv->get_array().size();
  a.left = &lv->get_array();
  a.right = array_of(t, "right_children", a.size);
  a.feature = array_of(t, "split_indices", a.size);
  a.condition = array_of(t, "split_conditions", a.size);
  a.default_left = array_of(t, "default_left", a.size);
  a.hessian = array_of(t, "sum_hessian", a.size);
  if (!a.right || !a.feature || !a.condition || !a.default_left || !a.hessian) {
    return invalid_argument("model JSON: bad tree arrays");
  }
  return a;
}

// A node as read from its tree: children are indices within the tree (-1 for
// a leaf); expected starts as the leaf value and is filled in for splits.
struct TreeNode {
  float threshold = 0;
  std::int32_t feature = -1;
  std::int32_t left = -1, right = -1, missing = -1;
  double cover = 0;
  double expected = 0;
};

Result<TreeNode> read_node(const TreeArrays& a, std::size_t i, std::size_t num_features) {
  double l, r, f, c, d, h;
  if (!number((*a.left)[i], &l) || !number((*a.right)[i], &r) || !number((*a.feature)[i], &f) ||
      !number((*a.condition)[i], &c) || !number((*a.default_left)[i], &d) || !number((*a.hessian)[i], &h)) {
    return invalid_argument("model JSON: non-numeric tree field");
  }
  TreeNode node;
  node.cover = h;
  if (l < 0) {
    node.expected = c;  // XGBoost keeps a leaf's value in split_conditions
    return node;
  }
  const double n = double(a.size);
  // Children after parents (XGBoost's numbering) rules out cycles.
  if (!(l > double(i) && l < n && r > double(i) && r < n) || !(f >= 0 && f < double(num_features))) {
    return invalid_argument("model JSON: tree structure out of range");
  }
  node.feature = static_cast<std::int32_t>(f);
  node.left = static_cast<std::int32_t>(l);
  node.right = static_cast<std::int32_t>(r);
  node.missing = d != 0 ? node.left : node.right;
  node.threshold = static_cast<float>(c);
  return node;
}

// Expected values bottom-up (children have larger indices): the cover-weighted
// mean of the children's, or their plain mean when neither has cover.
void set_expected_values(std::vector<TreeNode>& tree) {
  for (std::size_t k = tree.size(); k-- > 0;) {
    TreeNode& node = tree[k];
    if (node.feature < 0) continue;
    const TreeNode& left = tree[std::size_t(node.left)];
    const TreeNode& right = tree[std::size_t(node.right)];
    const double cl = left.cover, cr = right.cover;
    const double el = left.expected, er = right.expected;
    node.expected = cl + cr > 0 ? (cl * el + cr * er) / (cl + cr) : 0.5 * (el + er);
  }
}

Result<std::vector<TreeNode>> read_tree(const json::value& tree, std::size_t num_features) {
  auto arrays = tree_arrays(tree);
  if (!arrays) return arrays.status();
  std::vector<TreeNode> nodes;
  nodes.reserve(arrays->size);
  for (std::size_t i = 0; i < arrays->size; ++i) {
    auto node = read_node(*arrays, i, num_features);
    if (!node) return node.status();
    nodes.push_back(*node);
  }
  set_expected_values(nodes);
  return nodes;
}

}  // namespace

Result<PathAttributor> PathAttributor::build(const std::string& model_json, std::size_t num_features) {
  boost::system::error_code ec;
  json::value root = json::parse(model_json, ec);
  if (ec) return invalid_argument("model JSON: " + ec.message());
  const json::value* trees = trees_of(root);
  if (!trees || !trees->is_array()) return invalid_argument("model JSON: no trees");
  PathAttributor pa;
  pa.num_features_ = num_features;
  for (const json::value& tree_json : trees->get_array()) {
    auto tree = read_tree(tree_json, num_features);
    if (!tree) return tree.status();
    // All trees share nodes_, so a tree's child indices move by its offset.
    const std::int32_t offset = static_cast<std::int32_t>(pa.nodes_.size());
    for (const TreeNode& t : *tree) {
      Node node{};
      node.feature = t.feature;
      node.left = node.right = node.missing = -1;
      if (t.feature >= 0) {
        node.left = offset + t.left;
        node.right = offset + t.right;
        node.missing = offset + t.missing;
        node.threshold = t.threshold;
      }
      node.expected = static_cast<float>(t.expected);
      pa.nodes_.push_back(node);
    }
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
